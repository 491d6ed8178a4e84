"""The home page: what needs me now. Each item is worded as its reminder email would be."""

from datetime import date, timedelta

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Team, User
from postmortems import access, reminders
from postmortems.models import ActionItem, Participant, Postmortem, TimelineEntry

# Each section shows this many and links to the full list beyond it.
SECTION_LIMIT = 10
DUE_SOON_DAYS = 7
# Once the write-up is agreed (or not needed), an account that was never shared is no longer owed.
SETTLED = (Postmortem.Status.PUBLISHED, Postmortem.Status.NOT_REQUIRED)


def _first(queryset: QuerySet) -> tuple[list, bool]:
    """Up to SECTION_LIMIT rows, and whether there are more, in one query."""
    rows = list(queryset[: SECTION_LIMIT + 1])
    return rows[:SECTION_LIMIT], len(rows) > SECTION_LIMIT


def accounts_owed(user: User) -> QuerySet[Participant]:
    """The account requests and reminders of reminders.py, with my draft count on each."""
    drafts = (
        TimelineEntry.objects.filter(
            incident=OuterRef("incident"), author=user, state=TimelineEntry.State.DRAFT
        )
        .order_by()
        .values("incident")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return reminders.accounts_owed(user).annotate(
        draft_count=Coalesce(Subquery(drafts, output_field=IntegerField()), Value(0))
    )


def writeups_to_finish(user: User) -> QuerySet[Participant]:
    """Incidents I facilitate whose write-up is not published: none yet, draft, or in review."""
    return (
        Participant.objects.filter(user=user, role__in=Participant.FACILITATING_ROLES)
        .filter(
            Q(incident__postmortem__isnull=True)
            | Q(
                incident__postmortem__status__in=[
                    Postmortem.Status.DRAFT,
                    Postmortem.Status.IN_REVIEW,
                ]
            )
        )
        .select_related("incident", "incident__postmortem")
        .order_by("incident__created_at", "incident__pk")
    )


def my_open_items(user: User) -> QuerySet[ActionItem]:
    return access.visible_action_items(user).open().filter(owner=user).select_related("incident")


def team_summary(user: User, today: date) -> QuerySet[Team]:
    """The teams I manage, each with its overdue and due-soon counts, in one query."""
    on_team = Q(
        action_items__status__in=ActionItem.OPEN_STATUSES,
        action_items__incident__in=access.visible_incidents(user),
    )
    return (
        Team.objects.filter(managers=user)
        .annotate(
            overdue=Count("action_items", filter=on_team & Q(action_items__due_on__lt=today)),
            due_soon=Count(
                "action_items",
                filter=on_team
                & Q(
                    action_items__due_on__gte=today,
                    action_items__due_on__lte=today + timedelta(days=DUE_SOON_DAYS),
                ),
            ),
        )
        .order_by("name")
    )


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What needs me now."""
    user = request.user
    today = timezone.localdate()
    items = my_open_items(user)
    accounts, more_accounts = _first(accounts_owed(user))
    writeups, more_writeups = _first(writeups_to_finish(user))
    reviews, more_reviews = _first(
        access.postmortems_awaiting_approval(user)
        .select_related("incident")
        .order_by("submitted_at", "pk")
    )
    overdue, more_overdue = _first(items.filter(due_on__lt=today).order_by("due_on", "pk"))
    due_soon, more_due_soon = _first(
        items.filter(due_on__gte=today, due_on__lte=today + timedelta(days=DUE_SOON_DAYS)).order_by(
            "due_on", "pk"
        )
    )
    teams = list(team_summary(user, today))
    now = timezone.now()
    meetings, more_meetings = _first(
        reminders.upcoming_meetings(user, now).order_by("starts_at", "pk")
    )
    # The in-app twin of the "postmortem overdue" nudge: the same rule marks the write-ups here.
    overdue_writeups = {incident.pk for incident in reminders.postmortems_overdue(user, now)}
    context = {
        "overdue_writeup_ids": overdue_writeups,
        "meetings": meetings,
        "more_meetings": more_meetings,
        "today": today,
        "accounts": accounts,
        "more_accounts": more_accounts,
        "writeups": writeups,
        "more_writeups": more_writeups,
        "reviews": reviews,
        "more_reviews": more_reviews,
        "overdue_items": overdue,
        "more_overdue": more_overdue,
        "due_soon_items": due_soon,
        "more_due_soon": more_due_soon,
        "teams": teams,
        "team_overdue_total": sum(team.overdue for team in teams),
        "is_manager": bool(teams),
        "can_open_incident": access.can_open_incident(user),
        "shows_writeups": user.is_facilitator or bool(writeups),
        "shows_reviews": user.is_superuser or user.is_facilitator or bool(teams),
        "due_soon_days": DUE_SOON_DAYS,
    }
    context["needs_count"] = len(accounts) + len(writeups) + len(reviews) + len(overdue)
    return render(request, "postmortems/home.html", context)
