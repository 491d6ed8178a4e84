"""Rendered HTML kept in memory and reused while what it shows is unchanged.

Each process keeps its own pieces (no shared cache to run or to invalidate): a key is made of
everything a piece is made of, so a change makes a new key and the old piece simply ages out,
the least recently used going first. Used for timeline entry cards and whole merged timelines
(postmortems/timeline.py), the rows of the incident list, of the review and of an incident's
action items, the review's breakdowns, the digest page's sections (here), and form widgets
(forms/renderers.py, forms/widgets.py): pages are read far more often than they change, and
Django's templates cost about as much per row as everything else on those pages.
"""

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from django.http import HttpResponse
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


class Kept:
    """At most `keep` pieces of HTML by key (the limit is read at each put, so it may change)."""

    every: "list[Kept]" = []  # each store the process has, for forget_all

    def __init__(self) -> None:
        self._pieces: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        Kept.every.append(self)

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            html = self._pieces.get(key)
            if html is not None:
                self._pieces.move_to_end(key)
            return html

    def put(self, key: Hashable, html: str, *, keep: int) -> None:
        with self._lock:
            self._pieces[key] = html
            self._pieces.move_to_end(key)
            while len(self._pieces) > keep:
                self._pieces.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pieces.clear()

    def __len__(self) -> int:
        return len(self._pieces)


def forget_all() -> None:
    """Empty every store (the tests start each from nothing)."""
    for kept in Kept.every:
        kept.clear()


def fingerprint(parts: tuple) -> bytes:
    """A short key for `parts`, plain values (text, numbers, dates, lists and tuples of them)
    whose repr tells every difference apart: kept pieces hold 20 bytes of key, not the parts."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).digest()


# --- Large pieces, put into the page after it is rendered ----------------------------------------

# A comment no text can contain (user text is escaped, so "<!--" never comes from it), different
# in every process.
_SLOT = f"<!--slot-{secrets.token_hex(8)}-->"


def slot() -> SafeString:
    """What a template shows where fill() will put a large kept piece."""
    return mark_safe(_SLOT)


# A kept piece holding a form holds a CSRF token, which belongs to the request: the piece is
# rendered with this stand-in as its token (letters and digits, random when the process starts,
# so nobody can write it), and each request puts its own token there.
CSRF_SLOT = f"csrfslot{secrets.token_hex(16)}"


def with_csrf_token(piece: SafeString, token: str) -> SafeString:
    """A kept piece rendered with `csrf_token=CSRF_SLOT`, holding this request's token instead
    (Django's tokens are letters and digits; escaped all the same)."""
    return mark_safe(piece.replace(CSRF_SLOT, escape(token)))


def fill(response: HttpResponse, piece: bytes) -> HttpResponse:
    """The rendered page with its slot replaced by `piece` (kept HTML, already in UTF-8).

    A 300 KB timeline passed through the template was copied at every level of the page and
    encoded again for every response: 1.7 ms of the incident page's 15. Here it is copied once.
    """
    head, found, tail = response.content.partition(_SLOT.encode())
    if found:
        response.content = b"".join((head, piece, tail))
    return response


# --- Rows of the lists ---------------------------------------------------------------------------

# Pages of rows kept per process, for each list: a page is 20-40 KB.
PAGES_KEPT = 500
_pages = Kept()


def render(template_name: str, context: dict | Callable[[], dict], what: object) -> str:
    """`template_name` rendered with `context`, kept under `what` (everything the template
    reads from the context, as plain values), in the current time zone and language. A callable
    `context` is called only when the HTML is not kept."""
    template = get_template(template_name)
    parts = (
        # The template itself: runserver reloads a changed one, and so must this.
        id(template.template),
        template_name,
        timezone.get_current_timezone_name(),
        translation.get_language(),
        what,
    )
    key = fingerprint(parts)
    html = _pages.get(key)
    if html is None:
        html = template.render(context() if callable(context) else context)
        _pages.put(key, html, keep=PAGES_KEPT)
    return html


def rows(template_name: str, objects: list, row_key: Callable, *, context: tuple = ()) -> str:
    """`template_name` rendered with `objects` (as `rows`), kept under what each row shows
    (`row_key(obj)`, which must list everything the template reads of it) and `context` (what
    the rows read besides, such as today's date)."""
    return render(template_name, {"rows": objects}, (context, [row_key(obj) for obj in objects]))


def incident_rows(incidents: list) -> str:
    """The incident list's <tr>s; the incidents come from IncidentQuerySet.for_list, with
    add_service_names."""
    return rows("postmortems/includes/incident_rows.html", incidents, _incident_row)


def _incident_row(incident) -> tuple:
    return (
        incident.pk,
        incident.title,
        incident.severity,
        incident.status,
        incident.visibility,
        incident.participant_count,
        incident.created_at,
        incident.service_names,
    )


def action_item_rows(rows: list[tuple], today, make_items: Callable[[list], list]) -> str:
    """The action-item review's <tr>s from its rows as plain values (services.action_items.
    with_owner_names): the values are the key, and the items the template reads are made from
    them (`make_items`) only when the HTML is not kept. Overdue days and ages are counted from
    `today`."""
    template_name = "postmortems/includes/action_item_rows.html"
    return render(template_name, lambda: {"rows": make_items(rows)}, ((today,), rows))


def review_filters(context: dict) -> str:
    """The review's filter form (action_item_filters.html), kept under everything it shows: the
    values given for each of its fields, the team choices, which fields this viewer has, and
    the values that were rejected, with why."""
    form = context["filters"]
    what = (
        [(name, tuple(form.data.getlist(name))) for name in form.fields],
        tuple(form.fields["team"].choices),
        sorted((name, tuple(errors)) for name, errors in form.errors.items()),
    )
    return render("postmortems/includes/action_item_filters.html", context, what)


def review_breakdown(context: dict) -> str:
    """The review's "by owner" and "by team" tables (action_item_breakdown.html), from the
    review's context: its rows are plain dicts of names and counts."""
    flags = (
        "may_review",
        "owner_total",
        "owners_shown",
        "all_owners",
        "owner_query",
        "team_query",
        "owners_query",
    )
    what = (
        tuple(context[name] for name in flags),
        [tuple(row.items()) for row in context["owner_rows"]],
        [tuple(row.items()) for row in context["team_rows"]],
    )
    return render("postmortems/includes/action_item_breakdown.html", context, what)


def incident_action_item_rows(items: list, today) -> str:
    """The incident page's action items as rows; the items come from with_related()."""
    return rows(
        "postmortems/includes/action_item_incident_rows.html",
        items,
        _incident_action_item_row,
        context=(today,),
    )


def _incident_action_item_row(item) -> tuple:
    owner = item.owner
    return (
        item.pk,
        item.title,
        item.kind,
        owner and (owner.pk, owner.display_name, owner.email),
        item.due_on,
        item.status,
    )


# --- The digest page ------------------------------------------------------------------------------


def digest_sections(digest, *, review_url: str) -> str:
    """The "view in browser" digest's sections (digest_sections.html, as on the page). The
    template includes digest_items.html, which is part of the key too."""
    sections = (digest.overdue, digest.due_soon, digest.done, digest.new, digest.own)
    what = (
        id(get_template("postmortems/includes/digest_items.html").template),
        review_url,
        digest.today,
        digest.team_names,
        digest.is_manager,
        [(o.name, o.overdue, o.due_soon, o.done, o.new) for o in digest.owners],
        [(section.total, [_digest_item(item) for item in section.items]) for section in sections],
    )
    context = {"digest": digest, "base_url": "", "review_url": review_url, "for_email": False}
    return render("postmortems/includes/digest_sections.html", context, what)


def _digest_item(item) -> tuple:
    owner = item.owner
    return (
        item.pk,
        item.url,
        item.title,
        item.incident_id,
        owner and owner.name,
        item.due_on,
        item.due_label,
        item.status,
    )
