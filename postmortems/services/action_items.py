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
from django.db import transaction
from django.db.models import Case, Count, DateField, F, Q, QuerySet, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import User
from postmortems import access
from postmortems.forms.action_items import ALL_TEAMS, MY_TEAMS, ActionItemFilterForm
from postmortems.models import ActionItem, ActionItemChange

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


def review_figures(
    scope: QuerySet[ActionItem], filters: ActionItemFilterForm, today: date, now: datetime
) -> ReviewFigures:
    """Everything the review shows besides the list, in one query, however many items.

    One pass over the scope, grouped by owner, team and (for open items) the day they were
    opened, gives the counts, both breakdowns, the median age and how many items the list holds:
    each item is checked against the viewer's visibility once rather than once per figure (it
    was six passes, most of the page's time at 300,000 items).
    """
    wanted = _count_filters(today, now)
    annotations = {name: Count("pk", filter=q) for name, q in wanted.items()}
    annotations["listed"] = Count("pk", filter=narrowing(filters, today))
    # Items in none of the figures count for nothing: leaving them out, in two conditions the
    # indexes on status answer, skips a team's years of closed items.
    statuses = {*filters.value("status", []), *ActionItem.OPEN_STATUSES}
    relevant = Q(status__in=sorted(statuses)) | wanted["done_recently"]
    # Ages are whole days in the viewer's zone.
    opened_on = Case(
        When(
            wanted["open"],
            then=TruncDate("created_at", tzinfo=timezone.get_current_timezone()),
        ),
        default=None,
        output_field=DateField(),
    )
    groups = list(
        scope.filter(relevant)
        .order_by()
        .values("owner_id", *TEAM_KEYS, opened_on=opened_on)
        .annotate(**annotations)
    )
    # The owners' names in a query of their own: joined above, PostgreSQL hashed all 5,000
    # people on every view to name a hundred.
    owner_ids = {group["owner_id"] for group in groups} - {None}
    names = {
        pk: (display_name, email)
        for pk, display_name, email in User.objects.filter(pk__in=owner_ids)
        .order_by()
        .values_list("pk", "display_name", "email")
    }
    for group in groups:
        group["owner__display_name"], group["owner__email"] = names.get(
            group["owner_id"], (None, None)
        )
    counts = {name: sum(group[name] for group in groups) for name in COUNTS}
    # The median is taken in Python so that SQLite and PostgreSQL agree (only PostgreSQL has
    # percentile_cont).
    ages = [
        (today - group["opened_on"]).days
        for group in groups
        if group["opened_on"] is not None
        for _ in range(group["open"])
    ]
    counts["median_age_days"] = median(ages) if ages else None
    return ReviewFigures(
        counts=counts,
        owner_rows=_breakdown(groups, OWNER_KEYS),
        team_rows=_breakdown(groups, TEAM_KEYS),
        listed=sum(group["listed"] for group in groups),
    )


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
