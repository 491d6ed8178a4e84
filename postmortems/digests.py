"""The weekly action-item digest: compiled once, mailed at each person's local Monday morning,
and shown as a page ("view in browser") from the same data and template fragments.

Managers get their teams' overdue items, items due in the next seven days, items done last week
and items new last week, with counts per owner; everyone gets their own open items. The period
of a digest is the ISO date of the recipient's local Monday; the ledger sends one per period.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team, User

from . import emails
from .deliveries import Key, Outcome, Skip, deliver
from .models import ActionItem, Delivery, Participant

# Each list shows this many items; the counts are always complete, the rest is a link away.
LIST_LIMIT = 25
DUE_SOON_DAYS = 7


@dataclass
class Section:
    items: list[ActionItem]
    total: int

    @classmethod
    def of(cls, items: list[ActionItem]) -> "Section":
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
    last_week_from: datetime  # local midnights, as aware datetimes
    last_week_until: datetime


def _window(user: User, now: datetime) -> _Window:
    today = now.astimezone(user.zone).date()
    week_start = today - timedelta(days=today.weekday())
    return _Window(
        today=today,
        week_start=week_start,
        last_week_from=datetime.combine(week_start - timedelta(days=7), time(0), user.zone),
        last_week_until=datetime.combine(week_start, time(0), user.zone),
    )


def compile_many(users: Iterable[User], now: datetime) -> dict[int, Digest]:
    """Digests for many people in three queries (a fourth when restricted incidents have
    items in them), however many people, teams and items."""
    users = list(users)
    windows = {user.pk: _window(user, now) for user in users}
    teams_of: dict[int, list[Team]] = defaultdict(list)
    memberships = Team.managers.through.objects.filter(user_id__in=list(windows)).select_related(
        "team"
    )
    for membership in memberships.order_by("team__name"):
        teams_of[membership.user_id].append(membership.team)

    items_of_team: dict[int, list[ActionItem]] = defaultdict(list)
    team_ids = {team.pk for teams in teams_of.values() for team in teams}
    if team_ids:
        # One query covering every manager's window; each digest then takes its own share.
        latest_today = max(w.today for w in windows.values())
        since = min(w.last_week_from for w in windows.values())
        until = max(w.last_week_until for w in windows.values())
        team_items = (
            ActionItem.objects.filter(team_id__in=team_ids)
            .filter(
                Q(
                    status__in=ActionItem.OPEN_STATUSES,
                    due_on__lt=latest_today + timedelta(days=DUE_SOON_DAYS),
                )
                | Q(status=ActionItem.Status.DONE, completed_at__gte=since, completed_at__lt=until)
                | Q(created_at__gte=since, created_at__lt=until)
            )
            .select_related("owner", "incident", "team")
        )
        for item in team_items:
            items_of_team[item.team_id].append(item)

    own_items: dict[int, list[ActionItem]] = defaultdict(list)
    for item in (
        ActionItem.objects.open()
        .filter(owner_id__in=list(windows))
        .select_related("owner", "incident", "team")
    ):
        own_items[item.owner_id].append(item)

    sees = _restricted_access(users, [*items_of_team.values(), *own_items.values()])
    return {
        user.pk: _digest(
            user,
            windows[user.pk],
            teams_of[user.pk],
            sees(user, [item for team in teams_of[user.pk] for item in items_of_team[team.pk]]),
            sees(user, own_items[user.pk]),
        )
        for user in users
    }


def _restricted_access(
    users: list[User], item_lists: list[list[ActionItem]]
) -> Callable[[User, list[ActionItem]], list[ActionItem]]:
    """A filter keeping the items whose incident the user may see (access.visible_incidents).

    A restricted incident is for its participants and admins only: a team's manager who is not
    a participant must not read its items in a digest either. One more query, and only when
    some item belongs to a restricted incident.
    """
    restricted = {
        item.incident_id for items in item_lists for item in items if item.incident.is_restricted
    }
    participations = set()
    if restricted:
        participations = set(
            Participant.objects.filter(
                incident_id__in=restricted, user_id__in=[user.pk for user in users]
            ).values_list("user_id", "incident_id")
        )

    def sees(user: User, items: list[ActionItem]) -> list[ActionItem]:
        if user.is_active and user.is_superuser:
            return items
        return [
            item
            for item in items
            if not item.incident.is_restricted or (user.pk, item.incident_id) in participations
        ]

    return sees


def compile_for(user: User, now: datetime) -> Digest:
    return compile_many([user], now)[user.pk]


def _digest(user, window: _Window, teams, team_items, own_items) -> Digest:
    today, soon = window.today, window.today + timedelta(days=DUE_SOON_DAYS)
    open_items = [i for i in team_items if i.is_open and i.due_on is not None]
    overdue = sorted((i for i in open_items if i.due_on < today), key=_by_due)
    due_soon = sorted((i for i in open_items if today <= i.due_on < soon), key=_by_due)
    done = sorted(
        (
            i
            for i in team_items
            if i.status == ActionItem.Status.DONE
            and i.completed_at is not None
            and window.last_week_from <= i.completed_at < window.last_week_until
        ),
        key=lambda i: (i.completed_at, i.pk),
        reverse=True,
    )
    new = sorted(
        (i for i in team_items if window.last_week_from <= i.created_at < window.last_week_until),
        key=lambda i: (i.created_at, i.pk),
        reverse=True,
    )
    return Digest(
        recipient=user,
        today=today,
        week_start=window.week_start,
        teams=teams,
        overdue=Section.of(overdue),
        due_soon=Section.of(due_soon),
        done=Section.of(done),
        new=Section.of(new),
        own=Section.of(sorted(own_items, key=_by_due)),
        owners=_owner_counts(overdue=overdue, due_soon=due_soon, done=done, new=new),
    )


def _by_due(item: ActionItem) -> tuple:
    return (item.due_on is None, item.due_on or date.max, item.pk)


def _owner_counts(**buckets: list[ActionItem]) -> list[OwnerCounts]:
    counts: dict[int | None, OwnerCounts] = {}
    for bucket, items in buckets.items():
        for owner_id, number in Counter(item.owner_id for item in items).items():
            if owner_id not in counts:
                owner = next(item.owner for item in items if item.owner_id == owner_id)
                counts[owner_id] = OwnerCounts(name=owner.name if owner else "No owner")
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
    now: datetime | None = None, *, dispatch: Callable[[int, str], object] | None = None
) -> int:
    """Hand each due, unsettled digest to `dispatch(recipient_id, period)` (default: send here)."""
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
    count = 0
    for pk, name in recipients.values_list("pk", "time_zone"):
        (dispatch or send)(pk, period_of_zone[name])
        count += 1
    return count


def send(recipient_id: int, period: str, now: datetime | None = None) -> Outcome:
    """Send one person's digest for one week, at most once; empty digests are recorded skipped."""
    now = now or timezone.now()

    def compose(delivery: Delivery):
        user = User.objects.filter(
            pk=recipient_id, is_active=True, notify_weekly_digest=True
        ).first()
        if user is None:
            raise Skip("The recipient is inactive or switched the digest off.")
        if period_for(user.zone, now) != period:
            raise Skip("That week's digest is past.")
        digest = compile_for(user, now)
        if digest.is_empty:
            raise Skip("Nothing to report this week.")
        context = {
            "digest": digest,
            "base_url": settings.SITE_URL,
            "preview_url": emails.absolute_url(reverse("postmortems:digest_preview")),
            "review_url": emails.absolute_url(reverse("postmortems:action_item_review")),
        }
        return emails.build_notification(
            "weekly_digest", user, context, preference="notify_weekly_digest"
        )

    return deliver(Key(Delivery.Kind.WEEKLY_DIGEST, recipient_id, "", period), compose)
