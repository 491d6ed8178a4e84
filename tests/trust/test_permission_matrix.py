"""Every URL × method × principal × object variant: the expected status, nothing changed on a
refusal, and no hidden object's marker text in any response or email."""

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.core import mail
from django.shortcuts import resolve_url
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from postmortems import digests, reminders
from tests.trust import policy as p
from tests.trust.conftest import db_snapshot, rolled_back, snapshot_diff, write_count


def url_names(resolver=None, namespace: str = ""):
    """(name or None, route) of every URL pattern of the project, Django's admin aside."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # the admin guards itself (staff only), and is Django's
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_names(entry, inner)
        elif isinstance(entry, URLPattern):
            yield (f"{namespace}{entry.name}" if entry.name else None), str(entry.pattern)


def test_every_url_of_the_project_has_an_entry_in_the_policy_table():
    found = list(url_names())
    unnamed = [route for name, route in found if name is None]
    names = {name for name, _ in found if name}
    assert not unnamed, f"URL patterns without a name cannot be in the policy: {unnamed}"
    assert not sorted(names - set(p.POLICY)), "URLs missing from tests/trust/policy.py"
    assert not sorted(set(p.POLICY) - names), "policy entries for URLs that no longer exist"


def _outcome(response, login_url: str):
    status = response.status_code
    if status == 302 and response["Location"].startswith(login_url):
        return p.LOGIN
    return {404: p.HIDDEN, 403: p.FORBIDDEN, 200: p.OK, 302: p.OK}.get(status, status)


def _body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", errors="replace")


def _pdf_as_its_html(html: str, fetcher=None) -> bytes:
    # The PDF compresses its text; its HTML source is what we read for hidden markers. The PDF
    # itself is rendered by tests/postmortems/test_export.py.
    return html.encode()


def test_nobody_sees_or_changes_what_the_policy_does_not_allow(
    trust_scenario, monkeypatch, trust_figures
):
    monkeypatch.setattr("postmortems.services.writeups.export_pdf", _pdf_as_its_html)
    s = trust_scenario
    login_url = resolve_url(settings.LOGIN_URL)
    baseline = db_snapshot()
    wrong, leaks, unauthorised, impotent = [], [], [], []
    seen_markers: set[str] = set()
    bites = defaultdict(bool)  # (name, variant): some allowed POST changed the database
    cases = 0

    for name, rule in p.POLICY.items():
        for variant in rule.variants:
            url = reverse(name, args=rule.args(s, variant))
            if query := rule.query(s, variant):
                url += "?" + query
            for method in rule.methods:
                payload = rule.payload(s, variant) if method == "POST" else None
                for principal in p.PRINCIPALS:
                    expected = rule.expect(principal, variant, method)
                    case = f"{method} {name} [{variant}] as {principal}"
                    cases += 1
                    with rolled_back():
                        written = write_count()
                        client = s.client(principal)
                        if method == "POST":
                            response = client.post(url, payload or {})
                        else:
                            response = client.get(url)
                        body = _body(response)
                        actual = _outcome(response, login_url)
                        refused = expected != p.OK or actual in p.REFUSALS
                        watch = refused or method == "POST"
                        if watch and (written is None or write_count() != written):
                            changes = snapshot_diff(baseline, db_snapshot())
                        else:
                            changes = []
                    if actual != expected:
                        wrong.append(f"{case}: expected {expected}, got {response.status_code}")
                    if refused and changes:
                        unauthorised.append(f"{case}: {'; '.join(changes)}")
                    if method == "POST" and expected == p.OK and changes:
                        bites[(name, variant)] = True
                    if found := s.leaks(principal, body):
                        leaks.append(f"{case}: {', '.join(found)}")
                    seen_markers |= s.shown(principal, body)
            if "POST" in rule.methods and rule.mutates(variant):
                allowed = [x for x in p.PRINCIPALS if rule.expect(x, variant, "POST") == p.OK]
                if allowed and not bites[(name, variant)]:
                    impotent.append(f"POST {name} [{variant}] changed nothing for {allowed}")

    # Each kind of marker (per visibility) must show up for someone allowed, or checking that it
    # never shows to anyone else would prove nothing.
    kinds = {s.marker_kind(m) for m in s.markers}
    never_shown = sorted(kinds - {s.marker_kind(m) for m in seen_markers})
    figures = {
        "cases": cases,
        "wrong_status": len(wrong),
        "leaks": len(leaks),
        "unauthorised_changes": len(unauthorised),
        "markers_shown_to_allowed": len(seen_markers),
        "markers": len(s.markers),
    }
    trust_figures("permission matrix", **figures)
    problems = {
        "wrong status": wrong,
        "LEAKS": leaks,
        "UNAUTHORISED CHANGES": unauthorised,
        "payloads that changed nothing when allowed (the refusals prove little)": impotent,
        "markers never shown even to those allowed (the leak check would miss them)": never_shown,
    }
    report = "\n".join(
        f"\n{title} ({len(items)}):\n  " + "\n  ".join(items)
        for title, items in problems.items()
        if items
    )
    assert not report, report


def test_emails_and_the_digest_tell_nobody_what_they_may_not_see(trust_scenario, trust_figures):
    s = trust_scenario
    # Every kind of email at once: requests, invites, reminders, overdue write-ups, action-item
    # reminders and escalations (the scenario's items are long overdue), and weekly digests.
    mail.outbox = []
    for participant in s.observers.values():
        reminders.send_account_request(participant.pk)
    for incident in s.incidents.values():
        for participant in incident.participants.all():
            reminders.send_account_request(participant.pk)
        reminders.send_meeting_invite(incident.review_meeting.pk)
    reminders.scan()
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    digest_time = datetime.combine(monday, time(settings.REMINDERS["DIGEST_HOUR"] + 1), UTC)
    for user in s.users.values():
        digests.send(user.pk, digests.period_for(user.zone, digest_time), digest_time)

    leaks, checked = [], 0
    kinds = defaultdict(int)
    for message in mail.outbox:
        principal = s.principal_of(message.to[0])
        if principal is None:
            continue
        parts = [message.subject, message.body, *(c for c, _ in message.alternatives)]
        parts += [
            a[1].decode() if isinstance(a[1], bytes) else str(a[1]) for a in message.attachments
        ]
        checked += 1
        kinds[message.subject.split(":")[0][:30]] += 1
        if found := s.leaks(principal, "\n".join(parts)):
            leaks.append(f"to {principal} “{message.subject}”: {', '.join(found)}")
    trust_figures("emails", emails_checked=checked, leaks=len(leaks))
    assert checked >= 20, f"too few emails to prove anything: {dict(kinds)}"
    assert not leaks, "\n".join(leaks)
