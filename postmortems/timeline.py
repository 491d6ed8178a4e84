"""The merged timeline of an incident: everyone's shared entries, woven together.

The incident page calls `merged_timeline_context(request, incident)` and includes
`templates/postmortems/includes/merged_timeline.html`. The page's GET parameters drive it:
`person`, `kind`, `view=perspectives`, `window` (minutes), `as_of` (datetime-local, the viewer's
zone). Whatever the number of entries, it costs the same few queries.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User

from . import access, blameless
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


def merged_timeline_context(request: HttpRequest, incident: Incident) -> dict:
    """Context for templates/postmortems/includes/merged_timeline.html (one key: `timeline`).

    The caller has already checked that the viewer may see the incident. Drafts never appear
    here, not even the viewer's own: those are on the "my account" page.
    """
    user = request.user
    zone = viewer_zone(request)
    shared = TimelineEntry.objects.filter(incident=incident).shared()
    authors = list(
        User.objects.filter(pk__in=shared.values("author")).order_by("display_name", "email")
    )
    form = TimelineFilterForm(
        _filter_data(request), authors=authors, zone=zone, auto_id="timeline-filter-%s"
    )
    person = form.value("person")
    kind = form.value("kind")
    is_perspectives = form.value("view") == TimelineFilterForm.VIEW_PERSPECTIVES
    window = form.value("window", TimelineFilterForm.DEFAULT_WINDOW)
    as_of = form.value("as_of")

    entries = shared.select_related("author").order_by("occurred_at", "pk")
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
    else:
        entries = entries.prefetch_related(
            Prefetch("questions", queryset=ReviewQuestion.objects.select_related("asked_by"))
        )
    entries = list(entries)
    for entry in entries:
        entry.can_edit = access.can_edit_entry(user, entry)

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
        can_annotate=access.can_edit_incident(user, incident),
        authors=authors,
        action_url=f"{request.path}#timeline",
        clear_url=f"{request.path}#timeline",
        without_as_of_url=_url_without(request, "as_of"),
    )
    return {"timeline": timeline}


def _url_without(request: HttpRequest, name: str) -> str:
    params = request.GET.copy()
    params.pop(name, None)
    query = params.urlencode()
    return f"{request.path}{'?' + query if query else ''}#timeline"
