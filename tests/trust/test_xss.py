"""Script injection: a corpus of XSS payloads typed into every text field people can write, through
the real forms, then read back from every page that shows them, the Markdown and PDF exports and
the emails. An HTML parser finds no <script> element, no on* attribute and no javascript:/data:
link that did not come from the app's own templates. And the few places that switch escaping off
are each on an allow-list with the reason they are safe."""

import fnmatch
import re
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import markdown
from django.conf import settings
from django.core import mail
from django.urls import resolve, reverse
from django.utils import timezone

from accounts.models import User
from postmortems import digests, preferences, reminders
from postmortems.models import (
    ActionItem,
    Incident,
    Participant,
    Postmortem,
    ReviewMeeting,
    TimelineEntry,
)
from postmortems.services import writeups
from tests.trust import policy as p

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "<svg onload=alert(1)>",
    "[x](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<!-- " onmouseover=alert(1) x="--><img src=x onerror=alert(1)>',
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "<details open ontoggle=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "'';!--\"<XSS>=&{()}",
]
# Unticked boxes are not posted: a profile form without these would switch every email off.
NOTIFY_ALL = {name: "on" for name in preferences.FIELDS}
TOKEN_RE = re.compile(r"XSS\d{2}")
ROUNDS = 4  # round 0: every payload at once in long fields; then one payload per field, rotated
STATIC_PREFIX = "/" + settings.STATIC_URL.strip("/") + "/"
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "xlink:href",
    "data",
    "poster",
    "background",
    "srcdoc",
    "ping",
    "cite",
}
FORBIDDEN_ELEMENTS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base"}
# What browsers drop from a URL before they read its scheme.
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


def _payload(n: int) -> str:
    return f"XSS{n:02d} {PAYLOADS[n]}"


def short(round_: int, field: int) -> str:
    """One payload, a different one for each field and round."""
    return _payload((field + round_) % len(PAYLOADS))


def long(round_: int, field: int) -> str:
    """Every payload at once in round 0 (they must not shield one another); then one each."""
    if round_ == 0:
        return "\n\n".join(_payload(n) for n in range(len(PAYLOADS)))
    return short(round_, field)


class Auditor(HTMLParser):
    """Finds what would run in a browser: script elements (other than the app's own static
    files), on* attributes, javascript:/vbscript:/data: URLs and embedding elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "script":
            self.in_script = True
            if not (values.get("src") or "").startswith(STATIC_PREFIX):
                self.problems.append(f"<script {attrs}>")
        if tag in FORBIDDEN_ELEMENTS:
            self.problems.append(f"<{tag} {attrs}>")
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "refresh":
            self.problems.append(f"<meta refresh {attrs}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif name in URL_ATTRIBUTES and value and _is_script_url(value):
                self.problems.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append(f"inline script: {data[:80]!r}")


def _is_script_url(value: str) -> bool:
    scheme = _INVISIBLE.sub("", value).lower()
    return scheme.startswith(("javascript:", "vbscript:", "data:"))


def audit(html: str) -> list[str]:
    auditor = Auditor()
    auditor.feed(html)
    auditor.close()
    return auditor.problems


def test_the_auditor_finds_live_script_and_ignores_escaped_text():
    live = [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        "<a href=' data:text/html,x'>x</a>",
        "<svg><a xlink:href='javascript:alert(1)'>x</a></svg>",
        "<iframe src=x></iframe>",
    ]
    for html in live:
        assert audit(html), html
    assert not audit("&lt;script&gt;alert(1)&lt;/script&gt; <a href='https://x'>x</a>")
    assert not audit(f'<script src="{STATIC_PREFIX}js/app.js" defer></script>')


# --- Planting the payloads through the forms ----------------------------------------------------


def _local(moment: datetime) -> str:
    return timezone.localtime(moment, UTC).strftime("%Y-%m-%dT%H:%M")


def _pk_from(response) -> int:
    assert response.status_code == 302, response.content.decode()[:3000]
    return int(resolve(urlsplit(response["Location"]).path).kwargs["pk"])


class Round:
    """One round of planting: a new incident with everything in it, written by the people who may
    write each part, with payloads in every text field. Returns what to read back."""

    def __init__(self, scenario, n: int, documents: list):
        self.s = scenario
        self.n = n
        self.documents = documents  # (label, html) of responses to forms refused or previewed

    def post(self, principal: str, name: str, args, data: dict, *, keep: str = ""):
        response = self.s.client(principal).post(reverse(name, args=args), data)
        assert response.status_code < 500, (name, response.status_code)
        if keep:
            self.documents.append((f"round {self.n} {keep}", response.content.decode()))
        return response

    def plant(self) -> dict:
        s, n, now = self.s, self.n, timezone.now()
        f, a, owner = p.FACILITATOR, p.AUTHOR, p.PARTICIPANT
        for who, field in ((a, 0), (f, 1), (owner, 2)):
            self.post(
                who,
                "accounts:profile",
                [],
                {"display_name": short(n, field)[:150], "time_zone": "UTC", **NOTIFY_ALL},
            )
        incident_data = p.incident_payload(s) | {
            "title": short(n, 3),
            "summary": long(n, 4),
            "customer_impact": long(n, 5),
            "started_at": _local(now - timedelta(days=31)),
            "resolved_at": _local(now - timedelta(days=30)),
            "status": "resolved",
        }
        pk = _pk_from(self.post(f, "postmortems:incident_create", [], incident_data))
        for user in (s.users[a], s.users[owner]):
            self.post(
                f, "postmortems:participant_add", [pk], {"user": user.pk, "role": "responder"}
            )
        self.post(
            f,
            "postmortems:participant_add",
            [pk],
            {"email": f"new{n}@example.com", "display_name": short(n, 6)[:150], "role": "observer"},
        )
        # A quoted local part may hold almost anything: if the form takes it, it is shown.
        self.post(
            f,
            "postmortems:participant_add",
            [pk],
            {"email": f'"{short(n, 7)[:40]}"@example.com', "role": "observer"},
            keep="participant with a payload address",
        )
        words = {
            name: long(n, 8 + i)
            for i, name in enumerate(("action", "observation", "expectation", "assumption"))
        }
        words["understanding"] = long(n, 12)
        entry = p.entry_payload(**words) | {"intent": "share"}
        bad_link = self.post(
            a,
            "postmortems:my_account",
            [pk],
            entry | {"evidence_url": "javascript:alert(1)"},
            keep="entry refused for its javascript: link",
        )
        assert bad_link.status_code == 200, "a javascript: evidence link was accepted"
        self.post(
            a, "postmortems:my_account", [pk], entry | {"evidence_url": "https://e.example/x"}
        )
        entry_pk = TimelineEntry.objects.filter(incident_id=pk).latest("pk").pk
        self.post(f, "postmortems:entry_question_add", [entry_pk], {"text": long(n, 13)})
        self.post(f, "postmortems:entry_annotate", [entry_pk], {"key_moment": "detected"})

        self.post(f, "postmortems:postmortem_start", [pk], {})
        postmortem = Postmortem.objects.get(incident_id=pk)
        sections = {name: long(n, 14 + i) for i, name in enumerate(Postmortem.SECTIONS)}
        sections["version"] = postmortem.version
        self.post(
            f,
            "postmortems:postmortem_edit",
            [pk],
            sections | {"preview": "1"},
            keep="write-up preview",
        )
        self.post(f, "postmortems:postmortem_edit", [pk], sections)
        self.post(
            f,
            "postmortems:factor_create",
            [pk],
            {"category": "process", "description": long(n, 22), "entries": [entry_pk]},
        )
        meeting = p.meeting_payload(s, "") | {"location": short(n, 23)}
        refused = self.post(
            f,
            "postmortems:meeting_edit",
            [pk],
            meeting | {"video_url": "javascript:alert(1)"},
            keep="meeting refused for its javascript: link",
        )
        assert refused.status_code == 400, "a javascript: video link was accepted"
        self.post(
            f, "postmortems:meeting_edit", [pk], meeting | {"video_url": "https://v.example/x"}
        )
        item = p.action_item_payload(s, "") | {
            "title": short(n, 24),
            "description": long(n, 25),
            "due_on": (timezone.localdate() + timedelta(days=1)).isoformat(),
        }
        refused = self.post(
            f,
            "postmortems:action_item_create",
            [pk],
            item | {"tracker_url": "javascript:alert(1)"},
            keep="action item refused for its javascript: link",
        )
        assert refused.status_code == 200, "a javascript: tracker link was accepted"
        item_pk = _pk_from(
            self.post(
                f,
                "postmortems:action_item_create",
                [pk],
                item | {"tracker_url": "https://t.example/1"},
            )
        )
        self.post(
            owner,
            "postmortems:action_item_update",
            [item_pk],
            {
                "status": "in_progress",
                "owner": s.users[owner].pk,
                "due_on": (timezone.localdate() + timedelta(days=2)).isoformat(),
                "reason": long(n, 26),
            },
        )
        self.post(
            f,
            "postmortems:incident_edit",
            [pk],
            p.incident_payload(s, Incident.objects.get(pk=pk)) | {"summary": long(n, 27)},
        )
        self.post(
            f,
            "accounts:invite",
            [],
            {"email": f"invitee{n}@example.com", "display_name": short(n, 28)[:150]},
        )
        return {"incident": pk, "entry": entry_pk, "item": item_pk}


def _pages(ids: dict, scenario) -> list[tuple[str, str, str]]:
    """(principal, url name, args or url) of every page that shows what was planted."""
    incident, entry, item = ids["incident"], ids["entry"], ids["item"]
    newcomer = Participant.objects.filter(incident_id=incident, role="observer").first()
    factor = Postmortem.objects.get(incident_id=incident).factors.first()
    f, a, o = p.FACILITATOR, p.AUTHOR, p.OTHER_FACILITATOR
    pages = [
        (f, "home", []),
        (a, "home", []),
        (p.PARTICIPANT, "home", []),
        (o, "home", []),
        (f, "postmortems:incident_list", []),
        (f, "postmortems:incident_detail", [incident]),
        (p.OUTSIDER, "postmortems:incident_detail", [incident]),
        (f, "postmortems:incident_history", [incident]),
        (f, "postmortems:participant_add", [incident]),
        (f, "postmortems:participant_remove", [incident, newcomer.pk]),
        (a, "postmortems:my_account", [incident]),
        (f, "postmortems:entry_detail", [entry]),
        (a, "postmortems:entry_edit", [entry]),
        (a, "postmortems:entry_delete", [entry]),
        (f, "postmortems:postmortem_detail", [incident]),
        (o, "postmortems:postmortem_detail", [incident]),
        (f, "postmortems:postmortem_edit", [incident]),
        (f, "postmortems:postmortem_history", [incident]),
        (f, "postmortems:factor_create", [incident]),
        (f, "postmortems:factor_edit", [factor.pk]),
        (f, "postmortems:factor_delete", [factor.pk]),
        (f, "postmortems:meeting_edit", [incident]),
        (f, "postmortems:action_item_create", [incident]),
        (f, "postmortems:action_item_detail", [item]),
        (p.PARTICIPANT, "postmortems:action_item_detail", [item]),
        (p.MANAGER, "postmortems:digest_preview", []),
        (p.PARTICIPANT, "postmortems:digest_preview", []),
        (a, "accounts:profile", []),
    ]
    query_pages = [
        (f, reverse("postmortems:incident_detail", args=[incident]) + "?view=perspectives"),
        (f, reverse("postmortems:incident_list") + "?q=XSS"),
        (p.MANAGER, reverse("postmortems:action_item_review") + "?team=all&status=in_progress"),
        (f, reverse("postmortems:action_item_review") + "?team=all&status=in_progress"),
    ]
    return [(who, reverse(name, args=args)) for who, name, args in pages] + query_pages


def test_no_payload_runs_in_any_page_export_or_email(
    trust_scenario, trust_figures, django_capture_on_commit_callbacks
):
    s = trust_scenario
    mail.outbox = []
    documents: list[tuple[str, str]] = []
    planted = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(ROUNDS):
            planted.append(Round(s, n, documents).plant())
    # The javascript: links were refused by the forms: none is stored anywhere.
    for model, field in (
        (ActionItem, "tracker_url"),
        (ReviewMeeting, "video_url"),
        (TimelineEntry, "evidence_url"),
    ):
        assert not model.objects.filter(**{f"{field}__icontains": "script:"}).exists(), model
    # Reminders that the planted objects are due for, and everyone's digest.
    reminders.scan()
    for meeting_incident in planted:
        for participant in Participant.objects.filter(incident_id=meeting_incident["incident"]):
            reminders.send_account_request(participant.pk)
    monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
    digest_time = datetime.combine(monday, time(settings.REMINDERS["DIGEST_HOUR"] + 1), UTC)
    for user in User.objects.filter(is_active=True):
        digests.send(user.pk, digests.period_for(user.zone, digest_time), digest_time)
    # The write-ups go to review with a payload as the comment: the review trail shows it.
    for n, ids in enumerate(planted):
        response = s.client(p.FACILITATOR).post(
            reverse("postmortems:postmortem_transition", args=[ids["incident"], "submit"]),
            {"comment": long(n, 29)},
        )
        assert response.status_code == 302

    for ids in planted:
        for principal, url in _pages(ids, s):
            response = s.client(principal).get(url)
            assert response.status_code == 200, (principal, url, response.status_code)
            documents.append((f"{url} as {principal}", response.content.decode()))
        postmortem = Postmortem.objects.select_related("incident").get(incident_id=ids["incident"])
        documents.append((f"PDF HTML of {postmortem}", writeups.export_html(postmortem)))
        exported = s.client(p.FACILITATOR).get(
            reverse("postmortems:postmortem_export_markdown", args=[ids["incident"]])
        )
        # The .md must stay inert even in a naive renderer that passes raw HTML through.
        naive = markdown.markdown(exported.content.decode(), extensions=["tables"])
        documents.append((f"Markdown export of {postmortem}, rendered naively", naive))
    emails = [
        (f"email “{m.subject}” to {m.to[0]}", html)
        for m in mail.outbox
        for html, _ in m.alternatives
    ]
    documents += emails

    findings, silent = [], []
    for label, html in documents:
        findings += [f"{label}: {problem}" for problem in audit(html)]
        if not TOKEN_RE.search(html) and not label.startswith("email"):
            silent.append(label)
    shown = {token for _, html in documents for token in TOKEN_RE.findall(html)}
    trust_figures(
        "xss",
        payloads=len(PAYLOADS),
        documents_checked=len(documents),
        emails_checked=len(emails),
        unescaped=len(findings),
    )
    with_payloads = [label for label, html in emails if TOKEN_RE.search(html)]
    assert len(with_payloads) >= 10, [m.subject for m in mail.outbox]
    assert shown == {f"XSS{n:02d}" for n in range(len(PAYLOADS))}, "some payloads never shown"
    assert not silent, f"documents that showed no payload at all (nothing was tested): {silent}"
    assert not findings, "\n".join(findings)


# --- Where escaping is switched off ---------------------------------------------------------------

ROOT = Path(settings.BASE_DIR)
SCANNED = ["templates/**/*.html", "templates/**/*.txt", "templates/**/*.md", "*/**/*.py"]
UNSAFE = re.compile(
    r"\|\s*safe(seq)?\b|\{%\s*autoescape\s+off|\{%\s*filter\s+safe|mark_safe\s*\(|format_html\s*\("
    r"|SafeString\s*\(|SafeText\s*\(|html_safe\b|__html__"
)
# (path pattern, what matches) → why it is safe. Every use must be here, and every entry used.
ALLOWED = {
    ("postmortems/rendering.py", "mark_safe("): (
        "render_markdown marks safe only nh3's output: an allow-list of tags and attributes, "
        "URL schemes http/https/mailto and site paths, comments stripped (and the empty string)"
    ),
    ("postmortems/fragments.py", "mark_safe("): (
        "slot() marks safe only its own constant, an HTML comment made of a fixed prefix and "
        "random hex when the process starts, holding nothing anyone wrote; with_csrf_token() "
        "marks safe a kept piece of rendered (escaped) template output with its token stand-in "
        "replaced by the escaped CSRF token"
    ),
    ("postmortems/templatetags/digest_rows.py", "format_html("): (
        "a digest's rows: format_html escapes every value (titles, names, links, dates) as a "
        "template would; the format strings are constants of the module"
    ),
    ("postmortems/templatetags/digest_rows.py", "mark_safe("): (
        "marks safe only the module's constant markup (the overdue badge, 'no due date') and "
        "the join of rows that format_html has already escaped"
    ),
    ("templates/postmortems/export/postmortem.md", "{% autoescape off"): (
        "the Markdown download: every value people wrote passes rendering.escape_markdown or "
        "markdown_for_export first (raw HTML made literal, unsafe links dropped); the XSS test "
        "renders the file naively to prove it"
    ),
    ("templates/emails/*.txt", "{% autoescape off"): (
        "plain-text email subjects and bodies: never parsed as HTML, and HTML-escaping would "
        "garble names like O'Brien"
    ),
}


def _sources():
    for pattern in SCANNED:
        for path in ROOT.glob(pattern):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith((".venv/", ".tools/", "tests/", "staticfiles/")):
                continue
            if "/migrations/" in relative:
                continue
            yield relative, path


def test_escaping_is_switched_off_only_where_a_sanitiser_or_plain_text_makes_it_safe():
    found, used = [], set()
    for relative, path in _sources():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for match in UNSAFE.finditer(line):
                text = re.sub(r"\s+", " ", match.group(0)).replace("( ", "(")
                rule = next(
                    (
                        key
                        for key in ALLOWED
                        if fnmatch.fnmatch(relative, key[0]) and text.startswith(key[1])
                    ),
                    None,
                )
                if rule is None:
                    found.append(f"{relative}:{number}: {line.strip()}")
                else:
                    used.add(rule)
    assert not found, "escaping switched off without an allow-list entry:\n" + "\n".join(found)
    assert used == set(ALLOWED), f"allow-list entries no longer used: {set(ALLOWED) - used}"
