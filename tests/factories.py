"""Small keyword-only factories: defaults for everything a test does not care about."""

import itertools
from datetime import timedelta

from django.utils import timezone

from accounts.models import Team, User
from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Participant,
    Postmortem,
    TimelineEntry,
)

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_user(*, email: str | None = None, password: str = PASSWORD, **fields) -> User:
    n = next(_seq)
    fields.setdefault("display_name", f"Person {n}")
    return User.objects.create_user(email or f"person{n}@example.com", password, **fields)


def make_team(*, name: str | None = None, members=(), managers=()) -> Team:
    team = Team.objects.create(name=name or f"Team {next(_seq)}")
    team.members.add(*members)
    team.managers.add(*managers)
    return team


def make_incident(*, facilitator: User | None = None, **fields) -> Incident:
    facilitator = facilitator or make_user(is_facilitator=True)
    fields.setdefault("title", f"Checkout errors {next(_seq)}")
    incident = Incident.objects.create(created_by=facilitator, **fields)
    Participant.objects.create(
        incident=incident, user=facilitator, role=Participant.Role.FACILITATOR
    )
    return incident


def make_participant(
    *, incident: Incident, user: User | None = None, role=Participant.Role.RESPONDER
) -> Participant:
    return Participant.objects.create(incident=incident, user=user or make_user(), role=role)


def make_entry(
    *, incident: Incident | None = None, author: User | None = None, shared: bool = True, **fields
) -> TimelineEntry:
    incident = incident or make_incident()
    author = author or make_user()
    Participant.objects.get_or_create(incident=incident, user=author)
    fields.setdefault("occurred_at", timezone.now() - timedelta(hours=1))
    fields.setdefault("action", "Rolled back the deploy")
    state = TimelineEntry.State.SHARED if shared else TimelineEntry.State.DRAFT
    return TimelineEntry.objects.create(
        incident=incident,
        author=author,
        state=state,
        shared_at=timezone.now() if shared else None,
        **fields,
    )


def make_postmortem(*, incident: Incident | None = None, **fields) -> Postmortem:
    incident = incident or make_incident()
    fields.setdefault("created_by", incident.created_by)
    fields.setdefault("updated_by", incident.created_by)
    return Postmortem.objects.create(incident=incident, **fields)


def make_factor(*, postmortem: Postmortem | None = None, **fields) -> ContributingFactor:
    postmortem = postmortem or make_postmortem()
    fields.setdefault("category", ContributingFactor.Category.TECHNICAL)
    fields.setdefault("description", "The health check did not cover the replica.")
    return ContributingFactor.objects.create(postmortem=postmortem, **fields)


def make_action_item(*, incident: Incident | None = None, **fields) -> ActionItem:
    incident = incident or make_incident()
    fields.setdefault("title", f"Alert on replica lag {next(_seq)}")
    fields.setdefault("created_by", incident.created_by)
    fields.setdefault("due_on", timezone.localdate() + timedelta(days=14))
    if "owner" not in fields:
        fields["owner"] = make_user()
    return ActionItem.objects.create(incident=incident, **fields)


# --- Write-ups (added by the write-ups work) ----------------------------------------------------


def make_review_meeting(*, incident: Incident | None = None, attendees=(), **fields):
    from postmortems.models import ReviewMeeting

    incident = incident or make_incident()
    fields.setdefault("organiser", incident.created_by)
    fields.setdefault("starts_at", timezone.now() + timedelta(days=2))
    meeting = ReviewMeeting.objects.create(incident=incident, **fields)
    meeting.attendees.add(*attendees)
    return meeting
