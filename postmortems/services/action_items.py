"""Action items: creating and changing them (with their change log), and the review's reads.

The review's reads live here rather than in the view because the CSV export and the page must
filter identically, and the digest may want the same counts.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from statistics import median

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection, transaction
from django.db.models import (
    Count,
    DateField,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Team, User
from postmortems import access
from postmortems.forms.action_items import ALL_TEAMS, MY_TEAMS, ActionItemFilterForm
from postmortems.models import ActionItem, ActionItemChange, Incident

# --- Writes ------------------------------------------------------------------------------------


@transaction.atomic
def create_action_item(form, *, by: User) -> ActionItem:
    """Save a valid ActionItemForm; the team defaults to the owner's first team."""
    item: ActionItem = form.save(commit=False)
    item.incident = form.incident
    item.created_by = by
    if item.team_id is None and item.owner_id is not None:
        item.team = item.owner.teams.order_by("name", "pk").first()
    if item.status == ActionItem.Status.DONE:
        item.completed_at = timezone.now()
    item.save()
    return item


def _owner_label(user: User | None) -> str:
    return user.name[:200] if user else ""


@transaction.atomic
def change_action_item(
    item: ActionItem,
    *,
    by: User,
    status: str,
    owner: User | None,
    due_on: date | None,
    reason: str = "",
) -> list[ActionItemChange]:
    """Apply a status/owner/due-date change and record one ActionItemChange per field changed.

    The row is locked and compared as it is now, so two people changing the same item at once
    each get an accurate record of what they changed.
    """
    current = (
        ActionItem.objects.select_for_update(of=("self",)).select_related("owner").get(pk=item.pk)
    )
    now = timezone.now()
    changes: list[ActionItemChange] = []

    def record(field: str, old: str, new: str) -> None:
        changes.append(
            ActionItemChange(
                action_item=current,
                by=by,
                at=now,
                field=field,
                old_value=old[:200],
                new_value=new[:200],
                reason=reason,
            )
        )

    if status != current.status:
        record(
            "status",
            ActionItem.Status(current.status).label,
            ActionItem.Status(status).label,
        )
        if status == ActionItem.Status.DONE:
            current.completed_at = now
        elif current.status == ActionItem.Status.DONE:
            current.completed_at = None  # Reopened: it is not done any more.
        if status == ActionItem.Status.WONT_DO:
            current.closed_reason = reason
        else:
            current.closed_reason = ""
        current.status = status
    if (owner.pk if owner else None) != current.owner_id:
        record("owner", _owner_label(current.owner), _owner_label(owner))
        current.owner = owner
    if due_on != current.due_on:
        record(
            "due_on",
            current.due_on.isoformat() if current.due_on else "",
            due_on.isoformat() if due_on else "",
        )
        current.due_on = due_on
    if changes:
        current.save(update_fields=["status", "completed_at", "closed_reason", "owner", "due_on"])
        ActionItemChange.objects.bulk_create(changes)
    # The caller's object now matches the database.
    for field in ("status", "completed_at", "closed_reason", "owner_id", "due_on"):
        setattr(item, field, getattr(current, field))
    return changes


# --- Reads for the managers' review ---------------------------------------------------------------

SORTS = {
    "due": [F("due_on").asc(nulls_last=True), "pk"],
    "-due": [F("due_on").desc(nulls_last=True), "-pk"],
    "priority": ["priority", F("due_on").asc(nulls_last=True), "pk"],
    "-priority": ["-priority", F("due_on").asc(nulls_last=True), "pk"],
    "age": ["created_at", "pk"],
    "-age": ["-created_at", "-pk"],
    "owner": ["owner__display_name", "owner__email", F("due_on").asc(nulls_last=True), "pk"],
    "-owner": ["-owner__display_name", "-owner__email", F("due_on").asc(nulls_last=True), "pk"],
}
DEFAULT_SORT = "due"
DUE_SOON_DAYS = 7
DONE_RECENTLY_DAYS = 30


def review_scope(
    user: User, filters: ActionItemFilterForm, *, managed_team_ids: Iterable[int], may_review: bool
) -> QuerySet[ActionItem]:
    """Items the counts cover: visible ones, narrowed by team, owner, priority and severity."""
    items = access.visible_action_items(user)
    if may_review:
        owner = filters.value("owner")
        if owner is not None:
            items = items.filter(owner=owner)
    else:
        items = items.filter(owner=user)
    team = filters.value("team", filters.fields["team"].initial)
    if team == MY_TEAMS:
        items = items.filter(team_id__in=list(managed_team_ids))
    elif team != ALL_TEAMS:
        items = items.filter(team_id=int(team))  # a choice, so a known team's id
    if (priority := filters.value("priority")) is not None:
        items = items.filter(priority=priority)
    if (severity := filters.value("severity")) is not None:
        items = items.filter(incident__severity=severity)
    return items


def narrowing(filters: ActionItemFilterForm, today: date) -> Q:
    """The list's own filters on top of the scope: status, overdue, due window."""
    statuses = filters.value("status", list(ActionItem.OPEN_STATUSES))
    condition = Q(status__in=statuses)
    if filters.value("overdue"):
        condition &= Q(status__in=ActionItem.OPEN_STATUSES, due_on__lt=today)
    if (window := filters.value("due_window")) is not None:
        condition &= Q(due_on__gte=today, due_on__lte=today + timedelta(days=window))
    return condition


def sort(items: QuerySet[ActionItem], key: str | None) -> QuerySet[ActionItem]:
    return items.order_by(*SORTS.get(key or DEFAULT_SORT, SORTS[DEFAULT_SORT]))


def _count_filters(today: date, now: datetime) -> dict[str, Q]:
    is_open = Q(status__in=ActionItem.OPEN_STATUSES)
    return {
        "open": is_open,
        "overdue": is_open & Q(due_on__lt=today),
        "due_soon": is_open & Q(due_on__gte=today, due_on__lte=today + timedelta(DUE_SOON_DAYS)),
        "done_recently": Q(
            status=ActionItem.Status.DONE,
            completed_at__gte=now - timedelta(days=DONE_RECENTLY_DAYS),
        ),
    }


COUNTS = ("open", "overdue", "due_soon", "done_recently")
OWNER_KEYS = ("owner_id", "owner__display_name", "owner__email")
TEAM_KEYS = ("team_id", "team__name")


@dataclass
class ReviewFigures:
    """The review's counts, its two breakdowns and the size of the narrowed list."""

    counts: dict
    owner_rows: list[dict]
    team_rows: list[dict]
    listed: int
    # (display name, email) by id, for every owner of an item in the figures (the list's too).
    owner_names: dict


def review_figures(
    scope: QuerySet[ActionItem], filters: ActionItemFilterForm, today: date, now: datetime
) -> ReviewFigures:
    """Everything the review shows besides the list, in one query, however many items.

    One pass over the scope, grouped by owner and team, gives the counts, both breakdowns, how
    many items the list holds and (on PostgreSQL) every open item's age for the median: each item
    is checked against the viewer's visibility once rather than once per figure (it was six
    passes, most of the page's time at 300,000 items). The owners' names take a second, small
    query; elsewhere than PostgreSQL, so does the median age.
    """
    wanted = _count_filters(today, now)
    annotations = {name: Count("pk", filter=q) for name, q in wanted.items()}
    annotations["listed"] = Count("pk", filter=narrowing(filters, today))
    with_ages = connection.vendor == "postgresql"
    if with_ages:
        annotations["ages"] = ArrayAgg(_age_in_days(today), filter=wanted["open"], default=[])
    # Items in none of the figures count for nothing: leaving them out, in two conditions the
    # indexes on status answer, skips a team's years of closed items.
    statuses = {*filters.value("status", []), *ActionItem.OPEN_STATUSES}
    relevant = Q(status__in=sorted(statuses)) | wanted["done_recently"]
    groups = list(
        scope.filter(relevant).order_by().values("owner_id", *TEAM_KEYS).annotate(**annotations)
    )
    # The owners' names in a query of their own: joined above, PostgreSQL hashed all 5,000
    # people on every view to name a hundred.
    names = User.objects.names(group["owner_id"] for group in groups)
    for group in groups:
        group["owner__display_name"], group["owner__email"] = names.get(
            group["owner_id"], (None, None)
        )
    counts = {name: sum(group[name] for group in groups) for name in COUNTS}
    if with_ages:
        ages = [age for group in groups for age in group.pop("ages")]
    elif counts["open"]:
        opened = scope.filter(wanted["open"]).order_by().values_list(_opened_on(), flat=True)
        ages = [(today - day).days for day in opened]
    else:
        ages = []
    # The midpoint of the middle two for an even count: 3.5 days for 3 and 4.
    counts["median_age_days"] = median(ages) if ages else None
    return ReviewFigures(
        counts=counts,
        owner_rows=_breakdown(groups, OWNER_KEYS),
        team_rows=_breakdown(groups, TEAM_KEYS),
        listed=sum(group["listed"] for group in groups),
        owner_names=names,
    )


def _opened_on() -> TruncDate:
    """The day an item was opened in the viewer's zone: ages are whole days there."""
    return TruncDate("created_at", tzinfo=timezone.get_current_timezone())


class _DaysBetween(Func):
    """Whole days from the second date to the first: PostgreSQL's date subtraction."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = IntegerField()


def _age_in_days(today: date) -> _DaysBetween:
    return _DaysBetween(Value(today, output_field=DateField()), _opened_on())


# What a row of the review's table shows, read as plain values: building model instances for
# fifty rows (items, their incidents, teams and owners) cost more than finding the rows' kept HTML.
REVIEW_ROW = (
    "pk",
    "title",
    "incident_id",
    "incident_severity",
    "owner_id",
    "team_id",
    "team__name",
    "due_on",
    "priority",
    "status",
    "created_at",
)


def review_rows(items: QuerySet[ActionItem]) -> QuerySet:
    """The review's list as named tuples of REVIEW_ROW, for a page of it to be taken.

    The incident's severity is a subquery rather than a join: PostgreSQL then reads it for the
    page's fifty rows after sorting, not for each of a manager's thousand items before."""
    severity = Incident.objects.filter(pk=OuterRef("incident_id")).order_by().values("severity")
    return items.annotate(incident_severity=Subquery(severity)).values_list(*REVIEW_ROW, named=True)


def with_owner_names(rows: list, names: dict) -> list[tuple]:
    """Each row with its owner's (display name, email), or None, from `names` (by id, as
    ReviewFigures.owner_names has them); anyone not in it is read."""
    missing = {row.owner_id for row in rows} - names.keys() - {None}
    if missing:
        names = {**names, **User.objects.names(missing)}
    return [(*row, names.get(row.owner_id)) for row in rows]


def review_row_items(rows: list[tuple]) -> list[ActionItem]:
    """Action items holding what with_owner_names' rows hold, for the rows' template."""
    items = []
    for row in rows:
        # REVIEW_ROW's values, then the owner's names.
        (pk, title, incident_id, severity, owner_id, team_id, team_name) = row[:7]
        due_on, priority, status, created_at, owner = row[7:]
        item = ActionItem(
            pk=pk,
            title=title,
            incident_id=incident_id,
            owner_id=owner_id,
            team_id=team_id,
            due_on=due_on,
            priority=priority,
            status=status,
            created_at=created_at,
        )
        item.incident = Incident(pk=incident_id, severity=severity)
        item.team = Team(pk=team_id, name=team_name) if team_id is not None else None
        if owner is not None:
            item.owner = User(pk=owner_id, display_name=owner[0], email=owner[1])
        items.append(item)
    return items


def _breakdown(groups: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """One row per owner or per team (keys), with open or recently done items, worst first."""
    rows: dict = {}
    for group in groups:
        key = tuple(group[name] for name in keys)
        row = rows.setdefault(
            key, {**dict(zip(keys, key, strict=True)), **dict.fromkeys(COUNTS, 0)}
        )
        for name in COUNTS:
            row[name] += group[name]
    kept = [row for row in rows.values() if row["open"] or row["done_recently"]]
    # Most overdue first, then most open; then by name, nobody and no team last.
    return sorted(
        kept,
        key=lambda row: (
            -row["overdue"],
            -row["open"],
            *((row[name] is None, row[name] or "") for name in keys[1:]),
        ),
    )


# --- CSV export ----------------------------------------------------------------------------------

CSV_HEADER = [
    "id",
    "title",
    "incident",
    "incident title",
    "severity",
    "owner",
    "owner email",
    "team",
    "status",
    "priority",
    "kind",
    "due date",
    "days overdue",
    "created",
    "completed",
    "tracker link",
    "won't do reason",
    "link",
]
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """A cell a spreadsheet shows as text: formulas get a leading quote."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write() hands the line back, for streaming."""

    def write(self, value: str) -> str:
        return value


def csv_rows(items: QuerySet[ActionItem], today: date, zone: tzinfo) -> Iterator[str]:
    """The CSV, line by line, read from the database in chunks; times in the viewer's zone."""

    def local(moment: datetime | None) -> str:
        return timezone.localtime(moment, zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for item in items.with_related().iterator(chunk_size=500):
        yield writer.writerow(
            [
                neutralise(value)
                for value in (
                    item.pk,
                    item.title,
                    item.incident.human_id,
                    item.incident.title,
                    f"SEV{item.incident.severity}",
                    item.owner.name if item.owner else "",
                    item.owner.email if item.owner else "",
                    item.team.name if item.team else "",
                    item.get_status_display(),
                    item.get_priority_display(),
                    item.get_kind_display(),
                    item.due_on.isoformat() if item.due_on else "",
                    item.days_overdue(today) or "",
                    local(item.created_at),
                    local(item.completed_at),
                    item.tracker_url,
                    item.closed_reason,
                    settings.SITE_URL + item.get_absolute_url(),
                )
            ]
        )
