"""Every write-up URL × every kind of person × internal and restricted incidents.

Who may do what comes from DESIGN.md section 3: a person who may not see the incident gets 404,
one who may see it but not do this gets 403, anonymous people are sent to sign in, and a refused
request changes nothing in the database.
"""

from dataclasses import dataclass, field

import pytest
from django.urls import reverse
from django.utils import timezone

from postmortems.models import (
    ContributingFactor,
    Incident,
    Postmortem,
    PostmortemRevision,
    PostmortemTransition,
    ReviewMeeting,
)
from tests.factories import (
    make_entry,
    make_factor,
    make_incident,
    make_participant,
    make_postmortem,
    make_review_meeting,
    make_team,
    make_user,
)

ROLES = (
    "anonymous",
    "author",
    "other_participant",
    "facilitator",
    "other_facilitator",
    "manager",
    "outsider",
    "admin",
)
EDITORS = {"facilitator", "admin"}
APPROVERS = {"other_facilitator", "manager", "admin"}
PARTICIPANTS = {"author", "other_participant", "facilitator"}


def can_see(role: str, visibility: str) -> bool:
    if visibility == Incident.Visibility.INTERNAL:
        return role != "anonymous"
    return role in PARTICIPANTS or role == "admin"


@dataclass
class World:
    incident: Incident
    people: dict
    postmortem: Postmortem | None = None
    factor: ContributingFactor | None = None
    entry_pk: int = 0
    extra: dict = field(default_factory=dict)


def build_world(visibility: str, status: str | None, *, meeting: bool = False) -> World:
    facilitator = make_user(is_facilitator=True, display_name="Fran Facilitator")
    incident = make_incident(facilitator=facilitator, visibility=visibility)
    author = make_user(display_name="Ari Author")
    entry = make_entry(incident=incident, author=author)
    other = make_participant(incident=incident).user
    other_facilitator = make_user(is_facilitator=True)
    make_incident(facilitator=other_facilitator)
    manager = make_user()
    make_team(managers=[manager])
    people = {
        "anonymous": None,
        "author": author,
        "other_participant": other,
        "facilitator": facilitator,
        "other_facilitator": other_facilitator,
        "manager": manager,
        "outsider": make_user(),
        "admin": make_user(is_superuser=True, is_staff=True),
    }
    world = World(incident=incident, people=people, entry_pk=entry.pk)
    if status is not None:
        world.postmortem = make_postmortem(
            incident=incident,
            status=status,
            summary="Original summary",
            not_required_reason="No impact" if status == Postmortem.Status.NOT_REQUIRED else "",
            published_at=timezone.now() if status == Postmortem.Status.PUBLISHED else None,
        )
        world.factor = make_factor(postmortem=world.postmortem)
    if meeting:
        make_review_meeting(incident=incident, attendees=[author])
    return world


def snapshot() -> dict:
    """Everything in the write-up area that a request could change."""
    return {
        "postmortems": list(
            Postmortem.objects.order_by("pk").values(
                "pk",
                "status",
                "version",
                *Postmortem.SECTIONS,
                "submitted_at",
                "published_at",
                "not_required_reason",
            )
        ),
        "revisions": list(PostmortemRevision.objects.order_by("pk").values_list("pk", "version")),
        "transitions": list(PostmortemTransition.objects.order_by("pk").values_list("pk")),
        "factors": list(
            ContributingFactor.objects.order_by("pk").values("pk", "category", "description")
        ),
        "factor_links": list(
            ContributingFactor.entries.through.objects.order_by("pk").values_list(
                "contributingfactor_id", "timelineentry_id"
            )
        ),
        "meetings": list(
            ReviewMeeting.objects.order_by("pk").values(
                "pk", "starts_at", "duration_minutes", "location", "video_url", "sequence"
            )
        ),
        "attendees": list(
            ReviewMeeting.attendees.through.objects.order_by("pk").values_list(
                "reviewmeeting_id", "user_id"
            )
        ),
    }


def editors(role, world):
    return role in EDITORS


def approvers(role, world):
    return role in APPROVERS


def editors_or_approvers(role, world):
    return role in EDITORS | APPROVERS


def everyone(role, world):
    return True


def sections_post(world: World, version: int = 1, **changes) -> dict:
    data = {name: "" for name in Postmortem.SECTIONS}
    data.update(summary="Rewritten summary", version=str(version))
    data.update(changes)
    return data


def meeting_post(world: World) -> dict:
    return {
        "starts_at": "2031-05-06T10:00",
        "duration_minutes": "45",
        "location": "Room 4",
        "video_url": "https://meet.example.com/abc",
        "attendees": [world.people["facilitator"].pk],
    }


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url_name: str
    status: str | None  # the write-up's status before the request; None: no write-up
    allowed: object  # (role, world) -> bool, for people who can see the incident
    ok: int  # the status code when allowed
    data: object = None  # (world) -> dict
    target: str = "incident"  # what the URL's pk is
    action: str | None = None
    meeting: bool = False


CASES = [
    Case("detail of a draft", "get", "postmortem_detail", "draft", everyone, 200),
    Case("detail without a write-up", "get", "postmortem_detail", None, everyone, 200),
    Case("start", "post", "postmortem_start", None, editors, 302),
    Case("edit form", "get", "postmortem_edit", "draft", editors, 200),
    Case("edit save", "post", "postmortem_edit", "draft", editors, 302, data=sections_post),
    Case(
        "edit preview",
        "post",
        "postmortem_edit",
        "draft",
        editors,
        200,
        data=lambda w: {**sections_post(w), "preview": "1"},
    ),
    Case("history of a draft", "get", "postmortem_history", "draft", editors, 200),
    Case(
        "history in review",
        "get",
        "postmortem_history",
        "in_review",
        editors_or_approvers,
        200,
    ),
    Case("submit", "post", "postmortem_transition", "draft", editors, 302, action="submit"),
    Case("approve", "post", "postmortem_transition", "in_review", approvers, 302, action="approve"),
    Case(
        "send back",
        "post",
        "postmortem_transition",
        "in_review",
        editors_or_approvers,
        302,
        data=lambda w: {"comment": "Needs the impact numbers"},
        action="send_back",
    ),
    Case(
        "not required",
        "post",
        "postmortem_transition",
        "draft",
        editors,
        302,
        data=lambda w: {"comment": "A drill, no impact"},
        action="not_required",
    ),
    Case(
        "reopen",
        "post",
        "postmortem_transition",
        "published",
        editors_or_approvers,
        302,
        data=lambda w: {"comment": "New facts came up"},
        action="reopen",
    ),
    Case(
        "markdown of a published", "get", "postmortem_export_markdown", "published", everyone, 200
    ),
    Case("markdown of a draft", "get", "postmortem_export_markdown", "draft", editors, 200),
    Case("pdf of a published", "get", "postmortem_export_pdf", "published", everyone, 200),
    Case("pdf of a draft", "get", "postmortem_export_pdf", "draft", editors, 200),
    Case("factor form", "get", "factor_create", "draft", editors, 200),
    Case(
        "factor add",
        "post",
        "factor_create",
        "draft",
        editors,
        302,
        data=lambda w: {
            "category": "process",
            "description": "No runbook",
            "entries": [w.entry_pk],
        },
    ),
    Case(
        "factor edit",
        "post",
        "factor_edit",
        "draft",
        editors,
        302,
        data=lambda w: {"category": "process", "description": "Changed", "entries": []},
        target="factor",
    ),
    Case("factor delete", "post", "factor_delete", "draft", editors, 302, target="factor"),
    Case("meeting form", "get", "meeting_edit", None, editors, 200),
    Case("meeting save", "post", "meeting_edit", None, editors, 302, data=meeting_post),
    Case("meeting ics", "get", "meeting_ics", None, everyone, 200, meeting=True),
]


def expected_status(case: Case, role: str, visibility: str, world: World) -> int:
    if role == "anonymous":
        return 302
    if not can_see(role, visibility):
        return 404
    return case.ok if case.allowed(role, world) else 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "visibility", [Incident.Visibility.INTERNAL, Incident.Visibility.RESTRICTED]
)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_url_answers_each_person_as_the_rules_say_and_refusals_change_nothing(
    client, case, role, visibility
):
    world = build_world(visibility, case.status, meeting=case.meeting)
    user = world.people[role]
    if user is not None:
        client.force_login(user)
    pk = world.factor.pk if case.target == "factor" else world.incident.pk
    args = [pk, case.action] if case.action else [pk]
    url = reverse(f"postmortems:{case.url_name}", args=args)
    data = case.data(world) if case.data else {}
    before = snapshot()

    response = getattr(client, case.method)(url, data)

    expected = expected_status(case, role, visibility, world)
    assert response.status_code == expected, response.content[:500]
    if expected == 302 and role == "anonymous":
        assert response["Location"].startswith(reverse("accounts:login"))
    if expected != case.ok or role == "anonymous":
        assert snapshot() == before
    elif case.method == "post" and case.name != "edit preview":
        assert snapshot() != before, "an allowed write changed nothing"


@pytest.mark.django_db
def test_a_draft_is_not_shown_to_a_participant_who_is_not_an_editor(client):
    world = build_world(Incident.Visibility.INTERNAL, Postmortem.Status.DRAFT)
    client.force_login(world.people["author"])

    response = client.get(reverse("postmortems:postmortem_detail", args=[world.incident.pk]))

    assert b"Original summary" not in response.content
    assert b"not published yet" in response.content


@pytest.mark.django_db
def test_a_write_up_in_review_is_readable_by_a_reviewer_but_not_by_other_people(client):
    world = build_world(Incident.Visibility.INTERNAL, Postmortem.Status.IN_REVIEW)
    url = reverse("postmortems:postmortem_detail", args=[world.incident.pk])

    client.force_login(world.people["manager"])
    assert b"Original summary" in client.get(url).content
    client.force_login(world.people["outsider"])
    assert b"Original summary" not in client.get(url).content


@pytest.mark.django_db
def test_a_published_write_up_is_readable_by_everyone_who_sees_the_incident(client):
    world = build_world(Incident.Visibility.INTERNAL, Postmortem.Status.PUBLISHED)
    client.force_login(world.people["outsider"])

    response = client.get(reverse("postmortems:postmortem_detail", args=[world.incident.pk]))

    assert b"Original summary" in response.content
    assert b"Edit the write-up" not in response.content


@pytest.mark.django_db
def test_an_unknown_review_step_is_not_found(client):
    world = build_world(Incident.Visibility.INTERNAL, Postmortem.Status.DRAFT)
    client.force_login(world.people["facilitator"])
    before = snapshot()

    response = client.post(
        reverse("postmortems:postmortem_transition", args=[world.incident.pk, "delete"])
    )

    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.django_db
def test_an_inactive_editor_is_treated_as_someone_who_sees_nothing(client):
    world = build_world(Incident.Visibility.INTERNAL, Postmortem.Status.DRAFT)
    facilitator = world.people["facilitator"]
    client.force_login(facilitator)
    facilitator.is_active = False
    facilitator.save()
    before = snapshot()

    response = client.post(
        reverse("postmortems:postmortem_edit", args=[world.incident.pk]), sections_post(world)
    )

    # Django signs out a deactivated user: sent to sign in, and nothing saved.
    assert response.status_code in (302, 404)
    assert snapshot() == before


@pytest.mark.django_db
def test_a_factor_of_an_incident_someone_cannot_see_is_not_found(client):
    world = build_world(Incident.Visibility.RESTRICTED, Postmortem.Status.DRAFT)
    stranger = make_user(is_facilitator=True)
    client.force_login(stranger)
    before = snapshot()

    response = client.post(reverse("postmortems:factor_delete", args=[world.factor.pk]))

    assert response.status_code == 404
    assert snapshot() == before
