"""Who may do what with action items: every URL × every role × internal and restricted incidents.

A refusal is a 404 for people who may not see the incident and a 403 for those who may see but
not change; either way nothing in the database changes.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from postmortems.models import ActionItem, ActionItemChange, Incident
from tests.factories import (
    make_action_item,
    make_incident,
    make_participant,
    make_team,
    make_user,
)

ROLES = [
    "anonymous",
    "owner",
    "other_participant",
    "facilitator",
    "other_facilitator",
    "team_manager",
    "other_manager",
    "outsider",
    "admin",
]
INTERNAL = Incident.Visibility.INTERNAL
RESTRICTED = Incident.Visibility.RESTRICTED


@dataclass
class World:
    incident: Incident
    item: ActionItem
    people: dict[str, User | None]


def build_world(visibility: str) -> World:
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator, visibility=visibility)
    owner = make_participant(incident=incident).user
    other_participant = make_participant(incident=incident).user
    team_manager = make_user()
    team = make_team(members=[owner], managers=[team_manager])
    other_manager = make_user()
    make_team(managers=[other_manager])
    other_facilitator = make_user(is_facilitator=True)
    make_incident(facilitator=other_facilitator)
    item = make_action_item(
        incident=incident, owner=owner, team=team, title="Alert on replica lag beyond 30 s"
    )
    people = {
        "anonymous": None,
        "owner": owner,
        "other_participant": other_participant,
        "facilitator": facilitator,
        "other_facilitator": other_facilitator,
        "team_manager": team_manager,
        "other_manager": other_manager,
        "outsider": make_user(),
        "admin": make_user(is_superuser=True, is_staff=True),
    }
    return World(incident, item, people)


def sign_in(client, world: World, role: str) -> None:
    if world.people[role] is not None:
        client.force_login(world.people[role])


# What each role gets; roles not listed get the "otherwise" value.
SEES_RESTRICTED = {"owner", "other_participant", "facilitator", "admin"}
MAY_CHANGE = {"owner", "facilitator", "team_manager", "admin"}
MAY_CREATE = {"owner", "other_participant", "facilitator", "team_manager", "other_manager", "admin"}
# Reviewers (facilitators, managers, admins) see every visible item; others only their own.
SEES_IN_REVIEW = {
    INTERNAL: {
        "owner",
        "facilitator",
        "other_facilitator",
        "team_manager",
        "other_manager",
        "admin",
    },
    RESTRICTED: {"owner", "facilitator", "admin"},
}


def can_see(role: str, visibility: str) -> bool:
    return visibility == INTERNAL or role in SEES_RESTRICTED


def expected_detail(role: str, visibility: str) -> int:
    if role == "anonymous":
        return 302
    return 200 if can_see(role, visibility) else 404


def expected_update(role: str, visibility: str) -> int:
    if role == "anonymous":
        return 302
    if not can_see(role, visibility):
        return 404
    return 302 if role in MAY_CHANGE else 403


def expected_create(role: str, visibility: str, success: int) -> int:
    if role == "anonymous":
        return 302
    if not can_see(role, visibility):
        return 404
    return success if role in MAY_CREATE else 403


def assert_sent_to_sign_in(response) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_item_page(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)

    response = client.get(reverse("postmortems:action_item_detail", args=[world.item.pk]))

    expected = expected_detail(role, visibility)
    if expected == 302:
        assert_sent_to_sign_in(response)
    else:
        assert response.status_code == expected
    if expected == 200:
        assert response.context["can_change"] is (role in MAY_CHANGE)
        assert (
            b'action="' + world.item.get_absolute_url().encode() + b'update/"' in response.content
        ) is (role in MAY_CHANGE)


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_changing_an_item(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)
    before = ActionItem.objects.values().get(pk=world.item.pk)

    response = client.post(
        reverse("postmortems:action_item_update", args=[world.item.pk]),
        {
            "status": "in_progress",
            "owner": world.item.owner_id,
            "due_on": world.item.due_on.isoformat(),
        },
    )

    expected = expected_update(role, visibility)
    if role == "anonymous":
        assert_sent_to_sign_in(response)
    else:
        assert response.status_code == expected
    after = ActionItem.objects.values().get(pk=world.item.pk)
    if role in MAY_CHANGE and expected == 302:
        assert after["status"] == "in_progress"
        assert ActionItemChange.objects.filter(action_item=world.item).count() == 1
    else:
        assert after == before
        assert not ActionItemChange.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_the_new_item_form(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)

    response = client.get(reverse("postmortems:action_item_create", args=[world.incident.pk]))

    expected = expected_create(role, visibility, success=200)
    if role == "anonymous":
        assert_sent_to_sign_in(response)
    else:
        assert response.status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_creating_an_item(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)
    count = ActionItem.objects.count()

    response = client.post(
        reverse("postmortems:action_item_create", args=[world.incident.pk]),
        {
            "title": "Page the database on-call when failover starts",
            "owner": world.people["owner"].pk,
            "due_on": (timezone.localdate() + timedelta(days=10)).isoformat(),
            "priority": 2,
            "kind": "detect",
            "status": "open",
        },
    )

    expected = expected_create(role, visibility, success=302)
    if role == "anonymous":
        assert_sent_to_sign_in(response)
    else:
        assert response.status_code == expected
    created = ActionItem.objects.count() - count
    assert created == (1 if expected == 302 and role != "anonymous" else 0)


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_the_review_page_shows_only_what_each_person_may_see(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)

    response = client.get(reverse("postmortems:action_item_review"), {"team": "all"})

    if role == "anonymous":
        assert_sent_to_sign_in(response)
        return
    assert response.status_code == 200
    listed = [item.pk for item in response.context["page_obj"].object_list]
    assert (world.item.pk in listed) is (role in SEES_IN_REVIEW[visibility])


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_the_csv_export_shows_only_what_each_person_may_see(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)

    response = client.get(reverse("postmortems:action_item_export_csv"), {"team": "all"})

    if role == "anonymous":
        assert_sent_to_sign_in(response)
        return
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert (world.item.title in body) is (role in SEES_IN_REVIEW[visibility])


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
@pytest.mark.parametrize("role", ROLES)
def test_home_page(client, role, visibility):
    world = build_world(visibility)
    sign_in(client, world, role)

    response = client.get(reverse("home"))

    if role == "anonymous":
        assert_sent_to_sign_in(response)
    else:
        assert response.status_code == 200


@pytest.mark.django_db
def test_an_unknown_item_is_a_404_for_everyone(client):
    client.force_login(make_user(is_superuser=True))
    assert client.get(reverse("postmortems:action_item_detail", args=[999999])).status_code == 404
    assert client.post(reverse("postmortems:action_item_update", args=[999999])).status_code == 404
    assert client.get(reverse("postmortems:action_item_create", args=[999999])).status_code == 404


@pytest.mark.django_db
def test_an_inactive_owner_cannot_change_their_item(client):
    item = make_action_item()
    item.owner.is_active = False
    item.owner.save()
    client.force_login(item.owner)

    response = client.post(
        reverse("postmortems:action_item_update", args=[item.pk]),
        {"status": "done", "owner": item.owner_id, "due_on": item.due_on.isoformat()},
    )

    # force_login works for an inactive user, but the auth middleware treats them as signed out.
    assert response.status_code in (302, 403, 404)
    item.refresh_from_db()
    assert item.status == "open"
