"""Reminder rules (DESIGN.md section 5), each timed by settings.REMINDERS.

A rule is three plain functions:
- `candidates(now)`: one queryset (select_related/prefetch, no query per row) of the objects the
  rule may be due for; it holds the conditions SQL can decide, recipients' activity and
  preferences included;
- `due(obj, now)`: the deliveries due for that object now, in Python (time zones, business
  days, windows), each a ledger key and its recipient;
- `email(obj, recipient, key)`: the template name, its context and any attachments.

The scan and the send use the same two: `send(key)` reloads the object through `candidates` and
checks the key is still due, so an item done, an account shared or a preference switched off
between scan and send is skipped (and recorded as skipped) rather than mailed.

Windows, so a late scan catches up without sending stale news:
- account reminder: from ACCOUNT_DAYS_AFTER_ADDED after being added, for CATCH_UP; or, when a
  review meeting is set, from ACCOUNT_HOURS_BEFORE_MEETING before it until it starts;
- meeting reminder: from MEETING_HOURS_BEFORE until the meeting starts;
- postmortem overdue: from POSTMORTEM_OVERDUE_BUSINESS_DAYS after resolution, while still draft,
  for CATCH_UP;
- action item due soon: from ACTION_ITEM_DUE_SOON_DAYS before the due date through the due date;
  overdue: from the day after until the escalation replaces it; escalation: from
  ACTION_ITEM_ESCALATE_DAYS overdue, while the item is open, for CATCH_UP. Dates are the
  recipient's own.

Every window ends, so each scan reads only what became due lately, never the whole history: an
item forgotten for a year is on the home page and in the weekly digest, not mailed every week.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Exists, Model, OuterRef, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team, User

from . import emails, preferences
from .deliveries import Key, Outcome, Skip, deliver, unsettled
from .models import (
    ActionItem,
    Delivery,
    Incident,
    Participant,
    Postmortem,
    ReviewMeeting,
    TimelineEntry,
)

Kind = Delivery.Kind
# A reminder missed by more than this (the worker was down) is stale news and is dropped.
CATCH_UP = timedelta(days=7)
# Nobody is reminded of an account within a day of being asked for it.
MIN_GAP_AFTER_REQUEST = timedelta(days=1)
CLOSED_POSTMORTEM = (Postmortem.Status.PUBLISHED, Postmortem.Status.NOT_REQUIRED)


def _setting(name: str) -> int:
    return settings.REMINDERS[name]


@dataclass(frozen=True)
class Due:
    key: Key
    recipient: User


@dataclass(frozen=True)
class Rule:
    kind: str
    candidates: Callable[[datetime], QuerySet]
    due: Callable[[Model, datetime], list[Due]]
    email: Callable[[Model, User, Key], tuple[str, dict, list]]
    # Event rules (request, invite) are sent when the event happens, not found by the scan;
    # one the broker could not take then is in the ledger as retryable (tasks.EventTask).
    scanned: bool = True


# --- Queries shared with the home page (the in-app twins of these emails) ----------------------


def _shared_nothing() -> Exists:
    shared = TimelineEntry.objects.shared().filter(
        incident=OuterRef("incident"), author=OuterRef("user")
    )
    return ~Exists(shared)


def _owing_accounts() -> QuerySet[Participant]:
    """Participations whose person has shared no entry, in incidents still under review."""
    return (
        Participant.objects.exclude(role=Participant.Role.OBSERVER)
        .filter(_shared_nothing())
        .exclude(incident__postmortem__status__in=CLOSED_POSTMORTEM)
        .select_related("user", "incident", "incident__review_meeting")
    )


def accounts_owed(user: User) -> QuerySet[Participant]:
    """Incidents where `user` has not shared their account yet (home page: "accounts I owe")."""
    return _owing_accounts().filter(user=user).order_by("-added_at", "-pk")


def upcoming_meetings(user: User, now: datetime) -> QuerySet[ReviewMeeting]:
    """Review meetings the user attends that have not started yet."""
    return ReviewMeeting.objects.filter(attendees=user, starts_at__gt=now).select_related(
        "incident"
    )


def postmortems_overdue(user: User, now: datetime) -> list[Incident]:
    """Incidents the user facilitates whose write-up is still a draft past its business days."""
    incidents = _overdue_postmortems(now).filter(
        participants__user=user, participants__role__in=Participant.FACILITATING_ROLES
    )
    return [incident for incident in incidents if now >= postmortem_due_at(incident, user.zone)]


# --- Time helpers --------------------------------------------------------------------------------


def add_business_days(start: datetime, days: int) -> datetime:
    """`days` weekdays (Mon–Fri) after `start`, in its zone; a weekend counts from Monday 00:00."""
    zone = start.tzinfo
    if start.weekday() >= 5:
        monday = start.date() + timedelta(days=7 - start.weekday())
        start = datetime.combine(monday, time(0), tzinfo=zone)
    current = start.date()
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return datetime.combine(current, start.timetz())


def postmortem_due_at(incident: Incident, zone) -> datetime:
    return add_business_days(
        incident.resolved_at.astimezone(zone), _setting("POSTMORTEM_OVERDUE_BUSINESS_DAYS")
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _local_today(user: User, now: datetime) -> date:
    return now.astimezone(user.zone).date()


def _date_span(now: datetime) -> tuple[date, date]:
    """Every date it is somewhere on Earth right now (UTC-12 to UTC+14)."""
    return (now - timedelta(hours=12)).date(), (now + timedelta(hours=14)).date()


def _reachable(preference: str) -> QuerySet[User]:
    """People who can receive this kind of email: active, and have not switched it off."""
    return User.objects.filter(is_active=True, **{preference: True})


def _meeting(incident: Incident) -> ReviewMeeting | None:
    try:
        return incident.review_meeting
    except ReviewMeeting.DoesNotExist:
        return None


def _url(name: str, *args) -> str:
    return emails.absolute_url(reverse(f"postmortems:{name}", args=args))


# --- Account request and reminder ----------------------------------------------------------------


def _account_request_candidates(now: datetime) -> QuerySet[Participant]:
    return _owing_accounts().filter(user__is_active=True, user__notify_account_requests=True)


def _account_request_due(participant: Participant, now: datetime) -> list[Due]:
    if participant.added_by_id == participant.user_id:
        return []  # they added themselves (a facilitator opening an incident): no need to ask
    key = Key(Kind.ACCOUNT_REQUEST, participant.user_id, f"participant:{participant.pk}")
    return [Due(key, participant.user)]


def _account_reminder_candidates(now: datetime) -> QuerySet[Participant]:
    after_added = timedelta(days=_setting("ACCOUNT_DAYS_AFTER_ADDED"))
    before_meeting = timedelta(hours=_setting("ACCOUNT_HOURS_BEFORE_MEETING"))
    return _account_request_candidates(now).filter(
        Q(
            incident__review_meeting__isnull=True,
            added_at__lte=now - after_added,
            added_at__gt=now - after_added - CATCH_UP,
        )
        | Q(
            incident__review_meeting__starts_at__gt=now,
            incident__review_meeting__starts_at__lte=now + before_meeting,
            added_at__lte=now - MIN_GAP_AFTER_REQUEST,
        )
    )


def _account_reminder_due(participant: Participant, now: datetime) -> list[Due]:
    meeting = _meeting(participant.incident)
    if now < participant.added_at + MIN_GAP_AFTER_REQUEST:
        return []
    if meeting is not None:
        opens = meeting.starts_at - timedelta(hours=_setting("ACCOUNT_HOURS_BEFORE_MEETING"))
        if not opens <= now < meeting.starts_at:
            return []
        period = f"meeting:{_stamp(meeting.starts_at)}"
    else:
        opens = participant.added_at + timedelta(days=_setting("ACCOUNT_DAYS_AFTER_ADDED"))
        if not opens <= now < opens + CATCH_UP:
            return []
        period = "added"
    key = Key(Kind.ACCOUNT_REMINDER, participant.user_id, f"participant:{participant.pk}", period)
    return [Due(key, participant.user)]


def _account_email(participant: Participant, recipient: User, key: Key):
    incident = participant.incident
    context = {
        "participant": participant,
        "incident": incident,
        "meeting": _meeting(incident),
        "is_reminder": key.kind == Kind.ACCOUNT_REMINDER,
        "url": _url("my_account", incident.pk),
    }
    return "account_request", context, []


# --- Review meeting invite and reminder ---------------------------------------------------------


def _meetings() -> QuerySet[ReviewMeeting]:
    attendees = Prefetch(
        "attendees", queryset=_reachable("notify_review_meetings"), to_attr="reachable_attendees"
    )
    return ReviewMeeting.objects.select_related("incident", "organiser").prefetch_related(attendees)


def _meeting_invite_candidates(now: datetime) -> QuerySet[ReviewMeeting]:
    return _meetings().filter(starts_at__gt=now)


def _meeting_invite_due(meeting: ReviewMeeting, now: datetime) -> list[Due]:
    # One invite per version: a moved meeting (the sequence goes up) is invited again.
    object_key, period = f"meeting:{meeting.pk}", f"v{meeting.sequence}"
    return [
        Due(Key(Kind.MEETING_INVITE, person.pk, object_key, period), person)
        for person in meeting.reachable_attendees
    ]


def _meeting_reminder_candidates(now: datetime) -> QuerySet[ReviewMeeting]:
    before = timedelta(hours=_setting("MEETING_HOURS_BEFORE"))
    return _meetings().filter(starts_at__gt=now, starts_at__lte=now + before)


def _meeting_reminder_due(meeting: ReviewMeeting, now: datetime) -> list[Due]:
    object_key, period = f"meeting:{meeting.pk}", _stamp(meeting.starts_at)
    return [
        Due(Key(Kind.MEETING_REMINDER, person.pk, object_key, period), person)
        for person in meeting.reachable_attendees
    ]


def _meeting_email(meeting: ReviewMeeting, recipient: User, key: Key):
    context = {
        "meeting": meeting,
        "incident": meeting.incident,
        "is_reminder": key.kind == Kind.MEETING_REMINDER,
        "url": _url("incident_detail", meeting.incident_id),
    }
    # Imported here: the write-ups services enqueue our tasks, which import this module.
    from .services.writeups import meeting_ics

    attachment = ("review-meeting.ics", meeting_ics(meeting), "text/calendar")
    return "meeting_invite", context, [attachment]


# --- Postmortem overdue --------------------------------------------------------------------------


def _overdue_postmortems(now: datetime) -> QuerySet[Incident]:
    # Business days are at least as long as calendar days: a cheap, safe bound for SQL.
    earliest = now - timedelta(days=_setting("POSTMORTEM_OVERDUE_BUSINESS_DAYS"))
    return Incident.objects.filter(resolved_at__lte=earliest).filter(
        Q(postmortem__isnull=True) | Q(postmortem__status=Postmortem.Status.DRAFT)
    )


def _longest_business_span(days: int) -> timedelta:
    """More calendar time than `days` business days can ever take (weekends, a weekend start,
    and a day for the spread of time zones): a safe lower bound for SQL."""
    return timedelta(days=days + 2 * (days // 5 + 1) + 2 + 1)


def _postmortem_candidates(now: datetime) -> QuerySet[Incident]:
    facilitators = Participant.objects.filter(
        role__in=Participant.FACILITATING_ROLES,
        user__is_active=True,
        user__notify_postmortem_overdue=True,
    ).select_related("user")
    # Nudges that fell due more than CATCH_UP ago are stale: without this bound every tick
    # would reload every draft write-up ever left behind.
    span = _longest_business_span(_setting("POSTMORTEM_OVERDUE_BUSINESS_DAYS"))
    return (
        _overdue_postmortems(now)
        .filter(resolved_at__gt=now - span - CATCH_UP)
        .prefetch_related(
            Prefetch("participants", queryset=facilitators, to_attr="reachable_facilitators")
        )
    )


def _postmortem_due(incident: Incident, now: datetime) -> list[Due]:
    object_key, period = f"incident:{incident.pk}", incident.resolved_at.date().isoformat()
    dues = []
    for p in incident.reachable_facilitators:
        opens = postmortem_due_at(incident, p.user.zone)
        if opens <= now < opens + CATCH_UP:
            dues.append(Due(Key(Kind.POSTMORTEM_OVERDUE, p.user_id, object_key, period), p.user))
    return dues


def _postmortem_email(incident: Incident, recipient: User, key: Key):
    context = {
        "incident": incident,
        "business_days": _setting("POSTMORTEM_OVERDUE_BUSINESS_DAYS"),
        "url": _url("postmortem_detail", incident.pk),
    }
    return "postmortem_overdue", context, []


# --- Action items --------------------------------------------------------------------------------


def _owned_open_items() -> QuerySet[ActionItem]:
    return (
        ActionItem.objects.open()
        .filter(owner__is_active=True, owner__notify_action_items=True)
        .select_related("owner", "incident")
    )


def _due_soon_candidates(now: datetime) -> QuerySet[ActionItem]:
    first, last = _date_span(now)
    soon = timedelta(days=_setting("ACTION_ITEM_DUE_SOON_DAYS"))
    return _owned_open_items().filter(due_on__gte=first, due_on__lte=last + soon)


def _due_soon_due(item: ActionItem, now: datetime) -> list[Due]:
    today = _local_today(item.owner, now)
    soon = timedelta(days=_setting("ACTION_ITEM_DUE_SOON_DAYS"))
    if not item.due_on - soon <= today <= item.due_on:
        return []
    key = Key(Kind.ACTION_DUE_SOON, item.owner_id, f"action_item:{item.pk}", str(item.due_on))
    return [Due(key, item.owner)]


def _overdue_candidates(now: datetime) -> QuerySet[ActionItem]:
    first, last = _date_span(now)
    escalate = timedelta(days=_setting("ACTION_ITEM_ESCALATE_DAYS"))
    return _owned_open_items().filter(due_on__gt=first - escalate, due_on__lt=last)


def _overdue_due(item: ActionItem, now: datetime) -> list[Due]:
    days_over = (_local_today(item.owner, now) - item.due_on).days
    # Past the escalation point the escalation replaces this one.
    if not 1 <= days_over < _setting("ACTION_ITEM_ESCALATE_DAYS"):
        return []
    key = Key(Kind.ACTION_OVERDUE, item.owner_id, f"action_item:{item.pk}", str(item.due_on))
    return [Due(key, item.owner)]


def _escalation_candidates(now: datetime) -> QuerySet[ActionItem]:
    first, last = _date_span(now)
    escalate = timedelta(days=_setting("ACTION_ITEM_ESCALATE_DAYS"))
    managers = _reachable("notify_action_items")
    return (
        ActionItem.objects.open()
        # Escalations that fell due more than CATCH_UP ago are stale (see the module docstring).
        .filter(due_on__gt=first - escalate - CATCH_UP, due_on__lte=last - escalate)
        .select_related("owner", "incident", "team")
        .prefetch_related(
            Prefetch("team__managers", queryset=managers, to_attr="reachable_managers"),
            # Items without a team go to the managers of the owner's teams.
            Prefetch("owner__teams", queryset=Team.objects.order_by()),
            Prefetch("owner__teams__managers", queryset=managers, to_attr="reachable_managers"),
            # Who may see a restricted incident, and so hear about its items.
            Prefetch(
                "incident__participants",
                queryset=Participant.objects.filter(
                    incident__visibility=Incident.Visibility.RESTRICTED
                ).only("incident_id", "user_id"),
                to_attr="restricted_participants",
            ),
        )
    )


def _escalation_due(item: ActionItem, now: datetime) -> list[Due]:
    if item.team is not None:
        teams = [item.team]
    else:
        teams = list(item.owner.teams.all()) if item.owner else []
    managers = {m.pk: m for team in teams for m in team.reachable_managers}
    managers.pop(item.owner_id, None)  # a manager who owns the item has had the overdue one
    if item.incident.is_restricted:
        # A restricted incident is for its participants and admins (access.visible_incidents):
        # a team's manager outside it must not read its items' titles in an email either.
        insiders = {participant.user_id for participant in item.incident.restricted_participants}
        managers = {
            pk: manager
            for pk, manager in managers.items()
            if pk in insiders or manager.is_superuser
        }
    escalate = _setting("ACTION_ITEM_ESCALATE_DAYS")
    object_key, period = f"action_item:{item.pk}", str(item.due_on)
    return [
        Due(Key(Kind.ACTION_ESCALATION, manager.pk, object_key, period), manager)
        for manager in managers.values()
        if escalate <= (_local_today(manager, now) - item.due_on).days < escalate + CATCH_UP.days
    ]


def _action_item_email(item: ActionItem, recipient: User, key: Key):
    today = _local_today(recipient, timezone.now())
    context = {
        "item": item,
        "incident": item.incident,
        "kind": key.kind,
        "is_due_soon": key.kind == Kind.ACTION_DUE_SOON,
        "is_overdue": key.kind == Kind.ACTION_OVERDUE,
        "is_escalation": key.kind == Kind.ACTION_ESCALATION,
        "days_overdue": (today - item.due_on).days,
        "days_left": (item.due_on - today).days,
        "url": _url("action_item_detail", item.pk),
    }
    return "action_item", context, []


RULES: dict[str, Rule] = {
    rule.kind: rule
    for rule in (
        Rule(
            Kind.ACCOUNT_REQUEST,
            _account_request_candidates,
            _account_request_due,
            _account_email,
            scanned=False,
        ),
        Rule(
            Kind.ACCOUNT_REMINDER,
            _account_reminder_candidates,
            _account_reminder_due,
            _account_email,
        ),
        Rule(
            Kind.MEETING_INVITE,
            _meeting_invite_candidates,
            _meeting_invite_due,
            _meeting_email,
            scanned=False,
        ),
        Rule(
            Kind.MEETING_REMINDER,
            _meeting_reminder_candidates,
            _meeting_reminder_due,
            _meeting_email,
        ),
        Rule(Kind.POSTMORTEM_OVERDUE, _postmortem_candidates, _postmortem_due, _postmortem_email),
        Rule(Kind.ACTION_DUE_SOON, _due_soon_candidates, _due_soon_due, _action_item_email),
        Rule(Kind.ACTION_OVERDUE, _overdue_candidates, _overdue_due, _action_item_email),
        Rule(Kind.ACTION_ESCALATION, _escalation_candidates, _escalation_due, _action_item_email),
    )
}


# --- Finding and sending --------------------------------------------------------------------------


def due_now(now: datetime | None = None) -> list[Key]:
    """Keys due now and unsettled, plus any reminder's stale claims and retryable failures."""
    # A fixed number of queries however many rows: every rule is one queryset with its prefetches.
    now = now or timezone.now()
    found = [
        due.key
        for rule in RULES.values()
        if rule.scanned
        for obj in rule.candidates(now)
        for due in rule.due(obj, now)
    ]
    retry = [
        Key(*row)
        for row in Delivery.objects.reclaimable(now)
        .filter(kind__in=list(RULES))
        .order_by()
        .values_list("kind", "recipient_id", "object_key", "period")
    ]
    return list(dict.fromkeys([*unsettled(found, now), *retry]))


def scan(now: datetime | None = None, *, dispatch: Callable[[Key], object] | None = None) -> int:
    """Hand every due reminder to `dispatch` (the task enqueues; by default, send it here)."""
    keys = due_now(now)
    for key in keys:
        (dispatch or send)(key)
    return len(keys)


def send(key: Key, now: datetime | None = None) -> Outcome:
    """Send one reminder, at most once (see deliveries.deliver). Rechecks that it is still due."""
    now = now or timezone.now()
    rule = RULES[key.kind]

    def compose(delivery: Delivery):
        pk = int(key.object_key.rpartition(":")[2])
        obj = rule.candidates(now).filter(pk=pk).first()
        due = next((d for d in rule.due(obj, now) if d.key == key), None) if obj else None
        if due is None:
            raise Skip("No longer due, or the recipient switched these emails off.")
        name, context, attachments = rule.email(obj, due.recipient, key)
        return emails.build_notification(
            name,
            due.recipient,
            context,
            preference=preferences.FIELD_FOR_KIND[key.kind],
            attachments=attachments,
        )

    return deliver(key, compose)


def send_account_request(participant_id: int) -> Outcome | None:
    """Ask a newly added participant for their account."""
    return _send_event(Kind.ACCOUNT_REQUEST, participant_id)


def account_request_keys(participant_id: int, now: datetime | None = None) -> list[Key]:
    """The account request due for a participant (none when they added themselves)."""
    now = now or timezone.now()
    rule = RULES[Kind.ACCOUNT_REQUEST]
    participant = rule.candidates(now).filter(pk=participant_id).first()
    return [due.key for due in rule.due(participant, now)] if participant else []


def meeting_invite_keys(meeting_id: int, now: datetime | None = None) -> list[Key]:
    """One invite per attendee for the meeting's current version (empty once it has started)."""
    now = now or timezone.now()
    rule = RULES[Kind.MEETING_INVITE]
    meeting = rule.candidates(now).filter(pk=meeting_id).first()
    return [due.key for due in rule.due(meeting, now)] if meeting else []


def send_meeting_invite(meeting_id: int, *, dispatch: Callable[[Key], object] | None = None) -> int:
    """Invite each attendee (each its own delivery, so one bad address delays nobody else)."""
    keys = meeting_invite_keys(meeting_id)
    for key in keys:
        (dispatch or send)(key)
    return len(keys)


def _send_event(kind: str, pk: int) -> Outcome | None:
    now = timezone.now()
    rule = RULES[kind]
    obj = rule.candidates(now).filter(pk=pk).first()
    dues = rule.due(obj, now) if obj else []
    return send(dues[0].key, now) if dues else None
