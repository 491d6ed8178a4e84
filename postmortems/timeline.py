"""The merged timeline of an incident: everyone's shared entries, woven together.

The incident page calls `merged_timeline_html(request, incident)`: the rendered
`templates/postmortems/includes/merged_timeline.html`, from `merged_timeline_context`, kept while
nothing it shows has changed. The page's GET parameters drive it:
`person`, `kind`, `view=perspectives`, `window` (minutes), `as_of` (datetime-local, the viewer's
zone). Whatever the number of entries, it costs the same few queries.
"""

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.http import HttpRequest
from django.template.loader import get_template, render_to_string
from django.utils import timezone, translation
from django.utils.dates import MONTHS_3
from django.utils.html import format_html_join
from django.utils.text import Truncator, capfirst

from accounts.models import User

from . import access, blameless, fragments, kept_pages, links
from .forms.timeline import TimelineFilterForm
from .models import Incident, ReviewQuestion, TimelineEntry


@dataclass
class Column:
    """One person's entries within a moment seen from several sides."""

    author: User
    author_mark: int
    entries: list[TimelineEntry]


@dataclass
class Row:
    """One entry, or (perspectives view) a cluster of entries close together in time."""

    entries: list[TimelineEntry]
    # Filled only when the cluster holds entries by two or more people.
    columns: list[Column] = field(default_factory=list)

    @property
    def is_perspective(self) -> bool:
        return bool(self.columns)

    @property
    def starts_at(self) -> datetime:
        return self.entries[0].occurred_at

    @property
    def ends_at(self) -> datetime:
        return self.entries[-1].occurred_at


@dataclass
class Day:
    date: date
    rows: list[Row]

    @property
    def blocks(self) -> list["Block"]:
        """The rows as the template lays them out: a perspective on its own, and each run of
        single entries as one piece of HTML, its cards (entry.card_html) each in its <li>."""
        blocks: list[Block] = []
        run: list[TimelineEntry] = []
        for row in self.rows:
            if row.is_perspective:
                if run:
                    blocks.append(Block(html=_single_rows(run)))
                    run = []
                blocks.append(Block(perspective=row))
            else:
                run.extend(row.entries)
        if run:
            blocks.append(Block(html=_single_rows(run)))
        return blocks


@dataclass
class Block:
    perspective: Row | None = None
    html: str = ""


def _single_rows(entries: list[TimelineEntry]) -> str:
    # Joined here rather than looped over in the template, which costs more an entry, and a
    # timeline has hundreds. Each card_html is a rendered template (safe), so it is not escaped.
    return format_html_join(
        "", '<li class="timeline-row">{}</li>', ((e.card_html,) for e in entries)
    )


@dataclass
class MergedTimeline:
    incident: Incident
    days: list[Day]
    form: TimelineFilterForm
    zone: ZoneInfo
    entry_count: int
    is_perspectives: bool
    window: int
    perspective_count: int
    as_of: datetime | None
    hidden_count: int
    is_filtered: bool
    can_annotate: bool
    authors: list[User]
    action_url: str  # the page the timeline is on, at its timeline
    clear_url: str
    without_as_of_url: str


def cluster(entries: list[TimelineEntry], window: timedelta) -> list[list[TimelineEntry]]:
    """Sweep over entries in time order: an entry within `window` of the one before it joins
    that entry's cluster, so a run of closely spaced moments stays together."""
    clusters: list[list[TimelineEntry]] = []
    for entry in entries:
        if clusters and entry.occurred_at - clusters[-1][-1].occurred_at <= window:
            clusters[-1].append(entry)
        else:
            clusters.append([entry])
    return clusters


def perspective_rows(entries: list[TimelineEntry], window: timedelta) -> list[Row]:
    """Clusters with two or more authors become side-by-side rows; the rest stay single."""
    rows: list[Row] = []
    for group in cluster(entries, window):
        columns: dict[int, Column] = {}
        for entry in group:
            column = columns.setdefault(
                entry.author_id, Column(entry.author, entry.author_mark, [])
            )
            column.entries.append(entry)
        if len(columns) > 1:
            rows.append(Row(entries=group, columns=list(columns.values())))
        else:
            rows.extend(Row(entries=[entry]) for entry in group)
    return rows


def group_by_day(rows: list[Row], zone: ZoneInfo) -> list[Day]:
    """Days in the viewer's zone; a cluster that crosses midnight stays on its first day."""
    days: list[Day] = []
    for row in rows:
        day = timezone.localtime(row.starts_at, zone).date()
        if not days or days[-1].date != day:
            days.append(Day(date=day, rows=[]))
        days[-1].rows.append(row)
    return days


def entry_findings(entry: TimelineEntry) -> list[tuple[str, list[blameless.Finding]]]:
    """Blameless-language prompts for each filled first-person field, for its author's eyes."""
    results = []
    for label, words in entry.first_person_fields:
        findings = blameless.check(words)
        if findings:
            results.append((label, findings))
    return results


def viewer_zone(request: HttpRequest) -> ZoneInfo:
    user = request.user
    return user.zone if user.is_authenticated else ZoneInfo("UTC")


def _filter_data(request: HttpRequest) -> dict:
    data = {
        "view": TimelineFilterForm.VIEW_LIST,
        "window": str(TimelineFilterForm.DEFAULT_WINDOW),
    }
    for name in ("person", "kind", "view", "window", "as_of"):
        if name in request.GET:
            data[name] = request.GET[name]
    return data


# In the model's own order, as User.from_db wants them.
AUTHOR_FIELDS = tuple(
    f.attname for f in User._meta.concrete_fields if f.attname in {"id", "display_name", "email"}
)


def _author_rows(author_ids: Iterable[int]) -> list[tuple]:
    """These people's AUTHOR_FIELDS, in the filter's order. Looked up by id: asked as "whoever
    shared an entry here", PostgreSQL read the whole people table to find a dozen."""
    return list(
        User.objects.filter(pk__in=set(author_ids))
        .order_by("display_name", "email")
        .values_list(*AUTHOR_FIELDS)
    )


def shared_marks(incident: Incident) -> list[tuple]:
    """(id, version, key moment, author id) of each shared entry, by id: an edit bumps the
    version, sharing or deleting changes the set."""
    shared = TimelineEntry.objects.filter(incident=incident).shared()
    return list(shared.order_by("pk").values_list("pk", "version", "key_moment", "author_id"))


def _authors(incident: Incident, rows: list[tuple] | None = None) -> list[User]:
    """The authors of the shared entries, as users holding their names (anything else is read
    on access)."""
    if rows is None:
        rows = _author_rows(mark[3] for mark in shared_marks(incident))
    return [User.from_db(None, AUTHOR_FIELDS, row) for row in rows]


def merged_timeline_context(
    request: HttpRequest, incident: Incident, *, authors: list[User] | None = None
) -> dict:
    """Context for templates/postmortems/includes/merged_timeline.html (one key: `timeline`).

    The caller has already checked that the viewer may see the incident. Drafts never appear
    here, not even the viewer's own: those are on the "my account" page.
    """
    user = request.user
    zone = viewer_zone(request)
    shared = TimelineEntry.objects.filter(incident=incident).shared()
    if authors is None:
        authors = _authors(incident)
    form = TimelineFilterForm(
        _filter_data(request), authors=authors, zone=zone, auto_id="timeline-filter-%s"
    )
    bootstrap(form)
    person = form.value("person")
    kind = form.value("kind")
    is_perspectives = form.value("view") == TimelineFilterForm.VIEW_PERSPECTIVES
    window = form.value("window", TimelineFilterForm.DEFAULT_WINDOW)
    as_of = form.value("as_of")

    # The authors are at hand already (the filter's choices): no join for them, no 200 copies.
    author_of = {author.pk: author for author in authors}
    entries = shared.only(*CARD_ENTRY_FIELDS).order_by("occurred_at", "pk")
    if person:
        entries = entries.filter(author_id=person)
    if kind:
        entries = entries.filter(kind=kind)
    hidden_count = 0
    if as_of:
        # As known then: everything after the cut is hidden, and so are the review's questions
        # and key-moment marks, which were all added afterwards.
        hidden_count = entries.filter(occurred_at__gt=as_of).count()
        entries = entries.filter(occurred_at__lte=as_of)
    entries = list(entries)
    if missing := {entry.author_id for entry in entries} - author_of.keys():
        # Someone shared their first entry between the two queries.
        author_of.update((author.pk, author) for author in User.objects.filter(pk__in=missing))
    for entry in entries:
        entry.author = author_of[entry.author_id]
        entry.can_edit = access.can_edit_entry(user, entry)
    questions = {} if as_of else questions_by_entry(entries, incident=incident)
    can_annotate = access.can_edit_incident(user, incident)
    cards = render_cards(
        entries,
        CardMaker(user, zone),
        questions,
        heading_level=4,
        show_questions=True,
        hide_annotations=bool(as_of),
        can_annotate=can_annotate,
        show_date=False,
        on_detail=False,
    )
    for entry, html in zip(entries, cards, strict=True):
        entry.card_html = html

    if is_perspectives:
        rows = perspective_rows(entries, timedelta(minutes=window))
    else:
        rows = [Row(entries=[entry]) for entry in entries]
    timeline = MergedTimeline(
        incident=incident,
        days=group_by_day(rows, zone),
        form=form,
        zone=zone,
        entry_count=len(entries),
        is_perspectives=is_perspectives,
        window=window,
        perspective_count=sum(1 for row in rows if row.is_perspective),
        as_of=as_of,
        hidden_count=hidden_count,
        is_filtered=bool(person or kind or as_of),
        # Every entry here is shared, so the entry rule reduces to the incident rule.
        can_annotate=can_annotate,
        authors=authors,
        action_url=f"{request.path}#timeline",
        clear_url=f"{request.path}#timeline",
        without_as_of_url=_url_without(request, "as_of"),
    )
    return {"timeline": timeline}


# --- The whole merged timeline, kept while nothing it shows has changed ------------------------

MERGED_TEMPLATE = "postmortems/includes/merged_timeline.html"
# Timelines kept per process, the least recently shown going first. A 200-entry timeline is
# about 350 KB of HTML, so this is at most a few tens of MB.
TIMELINES_KEPT = 100
_timelines = fragments.Kept()


def merged_timeline_html(
    request: HttpRequest, incident: Incident, marks: list[tuple] | None = None
) -> bytes:
    """The merged timeline section (merged_timeline.html, rendered, in UTF-8), for the incident
    page, which puts it into the page with fragments.fill.

    Reading a timeline is far more common than changing it, and building it (every shared
    entry, its card, the days and perspectives) is most of the incident page's time. So the
    HTML is kept, under a fingerprint of everything it is made of, and reused until any of that
    changes. The fingerprint costs three small queries: each shared entry's marks
    (shared_marks), their authors' names (which the filter needs anyway), and the review
    questions on those entries with who asked, each read by id. The rest is this viewer's: who
    they are (their own entries carry edit links), whether they may annotate, their zone and
    language, the page and its filters.
    """
    if marks is None:
        marks = shared_marks(incident)
    author_rows = _author_rows(mark[3] for mark in marks)
    key = _fingerprint(request, incident, author_rows, marks)
    html = _timelines.get(key)
    if html is not None:
        return html
    context = merged_timeline_context(request, incident, authors=_authors(incident, author_rows))
    html = render_to_string(MERGED_TEMPLATE, context, request=request).encode()
    _timelines.put(key, html, keep=TIMELINES_KEPT)
    return html


def _fingerprint(
    request: HttpRequest, incident: Incident, author_rows: list[tuple], marks: list[tuple]
) -> bytes:
    user = request.user
    # By the entries' ids: joined to the entries instead, PostgreSQL read every question ever
    # asked to find a timeline's few.
    questions = (
        ReviewQuestion.objects.filter(entry_id__in=[mark[0] for mark in marks])
        .order_by("pk")
        .values_list("pk", "entry_id", "text", "asked_by__display_name", "asked_by__email")
    )
    parts = (
        incident.pk,
        user.pk,
        user.is_active,
        access.can_edit_incident(user, incident),
        viewer_zone(request).key,
        translation.get_language(),
        request.path,
        sorted(_filter_data(request).items()),
        # The template itself: runserver reloads a changed one, and so must this.
        id(get_template(MERGED_TEMPLATE).template),
        id(get_template(CARD_TEMPLATE).template),
        author_rows,
        marks,
        list(questions),
    )
    return fragments.fingerprint(parts)


def bootstrap(form: forms.Form) -> forms.Form:
    """Bootstrap's classes on a form's widgets, for templates that lay the fields out themselves
    (entry_filters.html, entry_form.html) rather than through crispy. Call it after validating:
    a field with errors gets is-invalid."""
    for name, form_field in form.fields.items():
        widget = form_field.widget
        if isinstance(widget, forms.HiddenInput):
            continue
        if isinstance(widget, forms.CheckboxInput | forms.RadioSelect):
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = "form-select"
        else:
            css = "form-control"
        if form.is_bound and name in form.errors:
            css += " is-invalid"
        widget.attrs["class"] = css
    return form


def questions_by_entry(
    entries: list[TimelineEntry], *, incident: Incident | None = None
) -> dict[int, list[ReviewQuestion]]:
    """The review questions of these entries, by entry, in one query (a prefetch would build a
    queryset per entry). With `incident`, those of its shared entries: no list of ids to send."""
    if incident is not None:
        found = ReviewQuestion.objects.filter(entry__incident=incident, entry__state="shared")
    else:
        found = ReviewQuestion.objects.filter(entry_id__in=[entry.pk for entry in entries])
    questions = defaultdict(list)
    for question in found.select_related("asked_by"):
        questions[question.entry_id].append(question)
    return questions


def _url_without(request: HttpRequest, name: str) -> str:
    params = request.GET.copy()
    params.pop(name, None)
    query = params.urlencode()
    return f"{request.path}{'?' + query if query else ''}#timeline"


# --- Entry cards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """What one entry's card shows, worked out in Python for one viewer: times in their zone,
    links, labels. templates/postmortems/includes/entry_card.html only places it.

    A card is the whole input of its HTML, and is made only of what CardMaker.key lists; so
    render_cards can keep each card's HTML by that key and not render the same card twice.
    """

    pk: int
    url: str
    edit_url: str
    delete_url: str
    share_url: str
    author_mark: int
    author_name: str
    author_initial: str
    time_iso: str  # the moment in UTC, for <time datetime>
    time_short: str  # "H:i" in the viewer's zone
    time_long: str  # "j M Y, H:i" in the viewer's zone
    time_label: str  # "j M, H:i" in the viewer's zone, for the buttons' screen-reader text
    entered: str  # "j M Y, H:i" as the author entered it
    entered_zone: str
    is_approximate: bool
    is_draft: bool
    kind: str
    kind_label: str
    basis: str
    basis_label: str
    key_moment: str
    key_moment_label: str
    version: int
    fields: tuple[tuple[str, str], ...]  # (label, words) of the first-person fields filled in
    evidence_url: str
    evidence_short: str
    questions: tuple[tuple[str, str], ...]  # (text, asked by), when they are to be shown
    can_edit: bool


# What CardMaker reads of an entry and its author: load only these (.only(*CARD_FIELDS)) and a
# page of 200 entries reads a quarter of the columns, and parses one datetime a row, not six.
# CardMaker.key is made of them too: a field read here but not listed would be stale in a card.
CARD_FIELDS = (
    "author_id",
    *TimelineEntry.EDITABLE_FIELDS,
    "state",
    "key_moment",
    "version",
    "author__display_name",
    "author__email",
)


CARD_ENTRY_FIELDS = tuple(name for name in CARD_FIELDS if "__" not in name)
_CARD_ENTRY_FIELDS = ("pk", *CARD_ENTRY_FIELDS)


class CardMaker:
    """Makes the cards of one page: the viewer's zone, the links' shape, the labels and the month
    names are worked out once, not once per entry (a timeline has hundreds)."""

    def __init__(self, viewer: User, zone: ZoneInfo) -> None:
        self.viewer = viewer
        self.zone = zone
        language = translation.get_language()
        self.months = _month_abbreviations(language)
        self.links = {
            name: links.pattern(f"postmortems:{name}")
            for name in ("entry_detail", "entry_edit", "entry_delete", "entry_share")
        }
        self.zones: dict[str, ZoneInfo] = {}
        self.context = (zone.key, language, self.links["entry_detail"])

    def key(self, entry: TimelineEntry, questions: Iterable[ReviewQuestion] = ()) -> tuple:
        """Everything the card of `entry` is made of (what __call__ reads), as a hashable value:
        equal keys, equal cards. Cheaper than making the card, which a hit never needs."""
        return (
            self.context,
            *(getattr(entry, name) for name in _CARD_ENTRY_FIELDS),
            entry.author.display_name,
            entry.author.email,
            tuple((q.pk, q.text, q.asked_by.display_name, q.asked_by.email) for q in questions),
            access.can_edit_entry(self.viewer, entry),
        )

    def __call__(self, entry: TimelineEntry, questions: Iterable[ReviewQuestion] = ()) -> Card:
        local = entry.occurred_at.astimezone(self.zone)
        entered = entry.occurred_at.astimezone(self._zone_of(entry))
        author = entry.author.name
        evidence = entry.safe_evidence_url
        pk = entry.pk
        return Card(
            pk=pk,
            url=self._link("entry_detail", pk),
            edit_url=self._link("entry_edit", pk),
            delete_url=self._link("entry_delete", pk),
            share_url=self._link("entry_share", pk),
            author_mark=entry.author_mark,
            author_name=author,
            author_initial=author[:1].upper(),
            time_iso=entry.occurred_at.astimezone(UTC).isoformat(),
            time_short=f"{local:%H:%M}",
            time_long=self._date_time(local),
            time_label=f"{self._day(local)}, {local:%H:%M}",
            entered=self._date_time(entered),
            entered_zone=entry.occurred_tz,
            is_approximate=entry.is_approximate,
            is_draft=entry.is_draft,
            kind=entry.kind,
            kind_label=_KIND_LABELS.get(entry.kind, entry.kind),
            basis=entry.basis,
            basis_label=_BASIS_LABELS.get(entry.basis, entry.basis),
            key_moment=entry.key_moment,
            key_moment_label=_KEY_MOMENT_LABELS.get(entry.key_moment, entry.key_moment),
            version=entry.version,
            fields=tuple(
                (label, words) for name, label in _field_labels() if (words := getattr(entry, name))
            ),
            evidence_url=evidence,
            evidence_short=Truncator(evidence).chars(70) if evidence else "",
            questions=tuple((q.text, q.asked_by.name) for q in questions),
            can_edit=access.can_edit_entry(self.viewer, entry),
        )

    def _zone_of(self, entry: TimelineEntry) -> ZoneInfo:
        # The zone the author entered the time in (TimelineEntry.entered_zone), once per name.
        if entry.occurred_tz not in self.zones:
            self.zones[entry.occurred_tz] = entry.entered_zone
        return self.zones[entry.occurred_tz]

    def _link(self, name: str, pk: int) -> str:
        before, after = self.links[name]
        return f"{before}{pk}{after}"

    def _day(self, moment: datetime) -> str:
        return f"{moment.day} {self.months[moment.month]}"  # "j M"

    def _date_time(self, moment: datetime) -> str:
        return f"{self._day(moment)} {moment.year}, {moment:%H:%M}"  # "j M Y, H:i"


_KIND_LABELS = dict(TimelineEntry.Kind.choices)
_BASIS_LABELS = dict(TimelineEntry.Basis.choices)
_KEY_MOMENT_LABELS = dict(TimelineEntry.KeyMoment.choices)


@functools.cache
def _field_labels() -> tuple[tuple[str, str], ...]:
    # TimelineEntry.first_person_fields' labels, worked out once.
    fields = (TimelineEntry._meta.get_field(name) for name in TimelineEntry.TEXT_FIELDS)
    return tuple((field.name, str(capfirst(field.verbose_name))) for field in fields)


@functools.lru_cache(maxsize=16)
def _month_abbreviations(language: str | None) -> tuple[str, ...]:
    # What the date filter's "M" prints, in the active language ("Jan" … "Dec").
    return ("", *(str(MONTHS_3[month]).title() for month in range(1, 13)))


# A rendered card, by its card and flags: at most this many are kept, the least recently used
# going first (1,000 cards are about 2 MB).
RENDERED_CARDS_KEPT = 5000
_rendered = fragments.Kept()
CARD_TEMPLATE = "postmortems/includes/entry_card.html"


def render_cards(
    entries: Iterable[TimelineEntry],
    make_card: CardMaker,
    questions: dict[int, list[ReviewQuestion]],
    request: HttpRequest | None = None,
    *,
    with_findings: bool = False,
    **flags,
) -> list[str]:
    """The HTML of each entry's card, with entry_card.html's flags.

    A card's HTML is a function of what CardMaker reads and the flags, so a card rendered
    before is taken from memory (by CardMaker.key): a page of 200 entries costs 200 lookups
    instead of 200 renders, and an edit changes one key, so that one card is rendered again.
    A draft's card for its author holds a share form, and so this request's CSRF token: it is
    kept with a stand-in for the token, which each request replaces with its own (so `request`
    is needed for those). Never kept: a card with a status message or the highlight. With
    `with_findings`, the author's own cards carry their blameless-language prompts.
    """
    template = get_template(CARD_TEMPLATE)
    highlight = flags.get("highlight")
    # The template reads `highlight` only as "is it this card?": other cards are the same HTML.
    flag_key = tuple(sorted((name, value) for name, value in flags.items() if name != "highlight"))
    token = None
    html = []
    for entry in entries:
        own_questions = questions.get(entry.pk, ())
        has_form = entry.is_draft and access.can_edit_entry(make_card.viewer, entry)
        one_off = bool(flags.get("status")) or (highlight is not None and highlight == entry.pk)
        key = None
        rendered = None
        if not one_off:
            # The template itself too: when runserver reloads a changed template, the cards
            # rendered from the old one are not served again.
            card_key = make_card.key(entry, own_questions)
            key = (template.template, card_key, with_findings, flag_key, has_form)
            rendered = _rendered.get(key)
        if rendered is None:
            card = make_card(entry, own_questions)
            findings = entry_findings(entry) if with_findings and card.can_edit else ()
            context = {"card": card, "findings": findings, **flags}
            if has_form:
                context["csrf_token"] = fragments.CSRF_SLOT
            rendered = template.render(context)
            if key is not None:
                _rendered.put(key, rendered, keep=RENDERED_CARDS_KEPT)
        if has_form:
            # What the csrf context processor would give, without running them all.
            token = token or kept_pages.csrf_token(request)
            rendered = fragments.with_csrf_token(rendered, token)
        html.append(rendered)
    return html
