"""The weekly action-item digest: compiled once, mailed at each person's local Monday morning,
and shown as a page ("view in browser") from the same data and template fragments.

Managers get their teams' overdue items, items due in the next seven days, items done last week
and items new last week, with counts per owner; everyone gets their own open items. The period
of a digest is the ISO date of the recipient's local Monday; the ledger sends one per period.
"""

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.core import mail
from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Q, Value, When
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from accounts.models import Team, User

from . import emails
from .deliveries import Key, Outcome, Skip, deliver, deliver_many
from .models import ActionItem, Delivery, Incident, Participant

# Each list shows this many items; the counts are always complete, the rest is a link away.
LIST_LIMIT = 25
DUE_SOON_DAYS = 7
# Digests compiled together and sent over one SMTP connection: one Celery task each.
BATCH_SIZE = 100


@dataclass
class Section:
    items: list[ActionItem]
    total: int

    @classmethod
    def of(cls, items: list) -> "Section":
        return cls(items=items[:LIST_LIMIT], total=len(items))

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@dataclass
class OwnerCounts:
    name: str
    overdue: int = 0
    due_soon: int = 0
    done: int = 0
    new: int = 0


@dataclass
class Digest:
    recipient: User
    today: date
    week_start: date
    teams: list[Team]
    overdue: Section
    due_soon: Section
    done: Section
    new: Section
    own: Section
    owners: list[OwnerCounts] = field(default_factory=list)

    @property
    def period(self) -> str:
        return self.week_start.isoformat()

    @property
    def last_week(self) -> tuple[date, date]:
        return self.week_start - timedelta(days=7), self.week_start - timedelta(days=1)

    @property
    def team_names(self) -> str:
        return ", ".join(team.name for team in self.teams)

    @property
    def is_manager(self) -> bool:
        return bool(self.teams)

    @property
    def is_empty(self) -> bool:
        sections = (self.overdue, self.due_soon, self.done, self.new, self.own)
        return not any(section.total for section in sections)


@dataclass(frozen=True)
class _Window:
    today: date
    week_start: date
    last_week_from: datetime  # local midnights, in UTC
    last_week_until: datetime


def _window(user: User, now: datetime) -> _Window:
    today = now.astimezone(user.zone).date()
    week_start = today - timedelta(days=today.weekday())
    return _Window(
        today=today,
        week_start=week_start,
        last_week_from=_utc_midnight(week_start - timedelta(days=7), user.zone),
        last_week_until=_utc_midnight(week_start, user.zone),
    )


def _utc_midnight(day: date, zone) -> datetime:
    # In UTC, like the rows: comparing datetimes of one zone is cheaper than of two.
    return datetime.combine(day, time(0), zone).astimezone(UTC)


# What a digest needs of an item, as plain values: a run reads tens of thousands of rows, and
# only the few each list shows become model instances (see _Items). The item's own fields come
# first, in the model's order, so that a row's head is what ActionItem.from_db takes.
_ITEM_NEEDS = {
    "id",
    "incident_id",
    "title",
    "owner_id",
    "team_id",
    "due_on",
    "status",
    "completed_at",
}
_ITEM_FIELDS = tuple(
    f.attname for f in ActionItem._meta.concrete_fields if f.attname in _ITEM_NEEDS
)
# The owners' names come from a query of their own (_Items): joined, PostgreSQL hashed all 5,000
# people to name the hundred owners of one manager's teams. The incident's visibility is the
# item's own copy (item_visibility.py), so the items are read without their incidents.
# `created_recently` is the creation time of the items created in the batch's widest week,
# None for the others: most rows are a team's long-open overdue items, and turning their
# timestamps into datetimes took a fifth of a manager's digest.
_ROW_FIELDS = (*_ITEM_FIELDS, "incident_visibility", "created_recently")
_OPEN = frozenset(ActionItem.OPEN_STATUSES)
_RESTRICTED = Incident.Visibility.RESTRICTED


def compile_many(users: Iterable[User], now: datetime) -> dict[int, Digest]:
    """Digests for many people in four queries (a fifth when restricted incidents have items
    in them), however many people, teams and items."""
    users = list(users)
    windows = {user.pk: _window(user, now) for user in users}
    teams_of: dict[int, list[Team]] = defaultdict(list)
    memberships = Team.managers.through.objects.filter(user_id__in=list(windows)).select_related(
        "team"
    )
    for membership in memberships.order_by("team__name"):
        teams_of[membership.user_id].append(membership.team)

    # One query for every list of every digest: the teams' items (covering every manager's
    # window) and everyone's own open items. A team's items are read once, however many of
    # its managers are in the batch.
    wanted = Q(owner_id__in=list(windows), status__in=ActionItem.OPEN_STATUSES)
    team_ids = {team.pk for teams in teams_of.values() for team in teams}
    created_recently = Value(None, output_field=DateTimeField())
    if team_ids:
        latest_today = max(w.today for w in windows.values())
        since = min(w.last_week_from for w in windows.values())
        until = max(w.last_week_until for w in windows.values())
        created_recently = Case(When(created_at__gte=since, then=F("created_at")))
        wanted |= Q(team_id__in=team_ids) & (
            Q(
                status__in=ActionItem.OPEN_STATUSES,
                due_on__lt=latest_today + timedelta(days=DUE_SOON_DAYS),
            )
            | Q(status=ActionItem.Status.DONE, completed_at__gte=since, completed_at__lt=until)
            | Q(created_at__gte=since, created_at__lt=until)
        )
    rows_of_team: dict[int, list] = defaultdict(list)
    own_rows: dict[int, list] = defaultdict(list)
    if windows:
        for row in (
            ActionItem.objects.filter(wanted)
            .annotate(created_recently=created_recently)
            .order_by()
            .values_list(*_ROW_FIELDS, named=True)
        ):
            if row.team_id in team_ids:
                rows_of_team[row.team_id].append(row)
            if row.owner_id in windows and row.status in _OPEN:
                own_rows[row.owner_id].append(row)

    sees = _restricted_access(users, [*rows_of_team.values(), *own_rows.values()])
    owner_ids = {row.owner_id for rows in rows_of_team.values() for row in rows}
    owner_ids |= {row.owner_id for rows in own_rows.values() for row in rows}
    items = _Items(User.objects.names(owner_ids))
    return {
        user.pk: _digest(
            user,
            windows[user.pk],
            teams_of[user.pk],
            sees(user, [row for team in teams_of[user.pk] for row in rows_of_team[team.pk]]),
            sees(user, own_rows[user.pk]),
            items,
        )
        for user in users
    }


def _restricted_access(users: list[User], row_lists: list[list]) -> Callable[[User, list], list]:
    """A filter keeping the rows whose incident the user may see (access.visible_incidents).

    A restricted incident is for its participants and admins only: a team's manager who is not
    a participant must not read its items in a digest either. One more query, and only when
    some item belongs to a restricted incident.
    """
    restricted = {
        row.incident_id
        for rows in row_lists
        for row in rows
        if row.incident_visibility == _RESTRICTED
    }
    participations = set()
    if restricted:
        participations = set(
            Participant.objects.filter(
                incident_id__in=restricted, user_id__in=[user.pk for user in users]
            ).values_list("user_id", "incident_id")
        )

    def sees(user: User, rows: list) -> list:
        if (user.is_active and user.is_superuser) or not restricted:
            return rows
        return [
            row
            for row in rows
            if row.incident_visibility != _RESTRICTED
            or (user.pk, row.incident_id) in participations
        ]

    return sees


class _Items:
    """The items the digests show, made once each from their rows, with what the templates
    print already worked out (a team's item is in every one of its managers' digests)."""

    def __init__(self, names: dict[int, tuple[str, str]]) -> None:
        self._names = names  # each owner's (display name, email) by id
        self._items: dict[int, ActionItem] = {}
        self._owners: dict[int, User] = {}
        self._incidents: dict[int, Incident] = {}
        # The link's shape, reversed once: each item's link is then an f-string.
        pk = 987654321
        self._link = reverse("postmortems:action_item_detail", args=[pk]).partition(str(pk))
        self._language = translation.get_language()

    def owner(self, row) -> User | None:
        owner = self._owners.get(row.owner_id)
        if owner is None and row.owner_id is not None:
            display_name, email = self._names[row.owner_id]
            owner = self._owners[row.owner_id] = _partial(
                User, id=row.owner_id, display_name=display_name, email=email
            )
        return owner

    def owner_name(self, owner_id: int | None) -> str:
        if owner_id is None:
            return "No owner"
        return User.name_of(*self._names[owner_id])

    def item(self, row) -> ActionItem:
        item = self._items.get(row.id)
        if item is None:
            # Only these fields are loaded; any other is read on access, as with .only().
            item = ActionItem.from_db(None, _ITEM_FIELDS, row[: len(_ITEM_FIELDS)])
            item.owner = self.owner(row)
            incident = self._incidents.get(row.incident_id)
            if incident is None:
                incident = self._incidents[row.incident_id] = _partial(
                    Incident, id=row.incident_id, visibility=row.incident_visibility
                )
            item.incident = incident
            item.url = f"{self._link[0]}{row.id}{self._link[2]}"
            item.due_label = self._date(row.due_on, "j M Y")
            item.due_short = self._date(row.due_on, "j M")
            self._items[row.id] = item
        return item

    def _date(self, day: date | None, fmt: str) -> str:
        return _format_date(day, fmt, self._language) if day else ""

    def section(self, rows: list) -> Section:
        return Section(items=[self.item(row) for row in rows[:LIST_LIMIT]], total=len(rows))


@functools.lru_cache(maxsize=4096)
def _format_date(day: date, fmt: str, language: str | None) -> str:
    # A run prints tens of thousands of due dates, most of them the same few hundred days.
    return date_format(day, fmt)


def _partial(model, **values):
    """An instance with only these fields loaded; any other is read on access, as with .only()."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(None, names, [values[name] for name in names])


def compile_for(user: User, now: datetime) -> Digest:
    return compile_many([user], now)[user.pk]


def _digest(user, window: _Window, teams, team_rows, own_rows, items: _Items) -> Digest:
    today, soon = window.today, window.today + timedelta(days=DUE_SOON_DAYS)
    since, until = window.last_week_from, window.last_week_until
    overdue, due_soon, done, new = [], [], [], []
    for row in team_rows:
        if row.status in _OPEN and row.due_on is not None:
            if row.due_on < today:
                overdue.append(row)
            elif row.due_on < soon:
                due_soon.append(row)
        elif (
            row.status == ActionItem.Status.DONE
            and row.completed_at is not None
            and since <= row.completed_at < until
        ):
            done.append(row)
        if row.created_recently is not None and since <= row.created_recently < until:
            new.append(row)
    overdue.sort(key=_by_due)
    due_soon.sort(key=_by_due)
    done.sort(key=lambda row: (row.completed_at, row.id), reverse=True)
    new.sort(key=lambda row: (row.created_recently, row.id), reverse=True)
    return Digest(
        recipient=user,
        today=today,
        week_start=window.week_start,
        teams=teams,
        overdue=items.section(overdue),
        due_soon=items.section(due_soon),
        done=items.section(done),
        new=items.section(new),
        own=items.section(sorted(own_rows, key=_by_due)),
        owners=_owner_counts(items, overdue=overdue, due_soon=due_soon, done=done, new=new),
    )


def _by_due(row) -> tuple:
    return (row.due_on is None, row.due_on or date.max, row.id)


def _owner_counts(items: _Items, **buckets: list) -> list[OwnerCounts]:
    counts: dict[int | None, OwnerCounts] = {}
    for bucket, rows in buckets.items():
        tally = Counter(row.owner_id for row in rows)
        for owner_id, number in tally.items():
            if owner_id not in counts:
                counts[owner_id] = OwnerCounts(name=items.owner_name(owner_id))
            setattr(counts[owner_id], bucket, number)
    return sorted(counts.values(), key=lambda c: (-c.overdue, -c.due_soon, c.name.lower()))


# --- When and to whom ---------------------------------------------------------------------------


def period_for(zone, now: datetime) -> str | None:
    """This local week's Monday (ISO) once its digest hour has passed in `zone`, else None."""
    # Open until Sunday night, so an hour missed on Monday is caught up later in the week.
    local = now.astimezone(zone)
    week_start = local.date() - timedelta(days=local.weekday())
    send_day = week_start + timedelta(days=settings.REMINDERS["DIGEST_WEEKDAY"])
    opens = datetime.combine(send_day, time(settings.REMINDERS["DIGEST_HOUR"]), zone)
    return week_start.isoformat() if local >= opens else None


def scan(
    now: datetime | None = None,
    *,
    dispatch: Callable[[int, str], object] | None = None,
    dispatch_batch: Callable[[str, list[int]], object] | None = None,
) -> int:
    """Hand on each due, unsettled digest: to `dispatch_batch(period, recipient_ids)` up to
    BATCH_SIZE at a time (the beat task enqueues these), or to `dispatch(recipient_id, period)`
    one by one; by default, send the batches here."""
    # Runs hourly, in a fixed number of queries however many people there are.
    now = now or timezone.now()
    opted_in = User.objects.filter(is_active=True, notify_weekly_digest=True)
    period_of_zone = {}
    for name in opted_in.order_by().values_list("time_zone", flat=True).distinct():
        period = period_for(User(time_zone=name).zone, now)
        if period is not None:
            period_of_zone[name] = period
    if not period_of_zone:
        return 0
    zones_of_period = defaultdict(list)
    for name, period in period_of_zone.items():
        zones_of_period[period].append(name)
    unsent = Q()
    for period, names in zones_of_period.items():
        settled = Delivery.objects.settled(now).filter(
            kind=Delivery.Kind.WEEKLY_DIGEST, recipient=OuterRef("pk"), period=period
        )
        unsent |= Q(time_zone__in=names) & ~Q(Exists(settled))
    # Only people with something that could be in a digest; the rest are not even tried.
    has_news = Q(Exists(Team.managers.through.objects.filter(user_id=OuterRef("pk")))) | Q(
        Exists(ActionItem.objects.open().filter(owner=OuterRef("pk")))
    )
    recipients = opted_in.filter(unsent).filter(has_news).order_by("pk")
    ids_of_period: dict[str, list[int]] = defaultdict(list)
    for pk, name in recipients.values_list("pk", "time_zone"):
        if dispatch is not None:
            dispatch(pk, period_of_zone[name])
        ids_of_period[period_of_zone[name]].append(pk)
    if dispatch is None:
        for period, ids in ids_of_period.items():
            for start in range(0, len(ids), BATCH_SIZE):
                batch = ids[start : start + BATCH_SIZE]
                if dispatch_batch is not None:
                    dispatch_batch(period, batch)
                else:
                    send_many(period, batch, now=now)
    return sum(len(ids) for ids in ids_of_period.values())


def send(recipient_id: int, period: str, now: datetime | None = None) -> Outcome:
    """Send one person's digest for one week, at most once; empty digests are recorded skipped."""
    now = now or timezone.now()

    def compose(delivery: Delivery):
        user = User.objects.filter(
            pk=recipient_id, is_active=True, notify_weekly_digest=True
        ).first()
        digest = compile_for(user, now) if _is_due(user, period, now) else None
        return _message(user, digest, period, now, _links())

    return deliver(Key(Delivery.Kind.WEEKLY_DIGEST, recipient_id, "", period), compose)


def send_many(
    period: str, recipient_ids: Iterable[int], now: datetime | None = None
) -> Counter[Outcome]:
    """Send a batch of digests for one week over one SMTP connection, each at most once.

    Compiled together (compile_many); each is claimed in the ledger before its send and marked
    sent straight after it (deliveries.deliver_many). A temporary error (the mail server went
    away) stops the batch and is raised for the task's retry, which sends only what is left.
    """
    now = now or timezone.now()
    recipient_ids = list(recipient_ids)
    users = {
        user.pk: user
        for user in User.objects.filter(
            pk__in=recipient_ids, is_active=True, notify_weekly_digest=True
        )
    }
    compiled = compile_many([u for u in users.values() if _is_due(u, period, now)], now)
    links = _links()

    def compose(delivery: Delivery):
        pk = delivery.recipient_id
        return _message(users.get(pk), compiled.get(pk), period, now, links)

    keys = [Key(Delivery.Kind.WEEKLY_DIGEST, pk, "", period) for pk in recipient_ids]
    connection = mail.get_connection()
    try:
        return deliver_many(keys, compose, connection=connection)
    finally:
        connection.close()


def _is_due(user: User | None, period: str, now: datetime) -> bool:
    return user is not None and period_for(user.zone, now) == period


def _links() -> dict:
    return {
        "base_url": settings.SITE_URL,
        "preview_url": emails.absolute_url(reverse("postmortems:digest_preview")),
        "review_url": emails.absolute_url(reverse("postmortems:action_item_review")),
    }


def _message(user: User | None, digest: Digest | None, period: str, now: datetime, links: dict):
    if user is None:
        raise Skip("The recipient is inactive or switched the digest off.")
    if digest is None:
        raise Skip("That week's digest is past.")
    if digest.is_empty:
        raise Skip("Nothing to report this week.")
    return emails.build_notification(
        "weekly_digest", user, {"digest": digest, **links}, preference="notify_weekly_digest"
    )
