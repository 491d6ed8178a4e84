"""The home page: what needs me now, worded as the reminders are."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from postmortems import access
from postmortems.models import ActionItem, Incident, Participant, Postmortem
from tests.factories import (
    make_action_item,
    make_entry,
    make_incident,
    make_participant,
    make_postmortem,
    make_review_meeting,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db
HOME = reverse("home")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def url_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@pytest.fixture
def me(client):
    user = make_user(display_name="Andy Engineer")
    client.force_login(user)
    return user


# --- Accounts I owe ------------------------------------------------------------------------------


def test_accounts_i_owe_are_incidents_where_i_have_shared_nothing(client, me):
    owed = make_incident(title="Checkout errors")
    make_participant(incident=owed, user=me)
    make_entry(incident=owed, author=me, shared=False)  # a draft is not yet shared
    done = make_incident(title="Queue backlog")
    make_entry(incident=done, author=me, shared=True)
    make_incident(title="Not mine")

    response = client.get(HOME)

    assert [p.incident for p in response.context["accounts"]] == [owed]
    assert response.context["accounts"][0].draft_count == 1
    body = response.content.decode()
    assert "Checkout errors" in body
    assert "haven't shared your account yet" in body
    assert "1 draft entry that only you can see" in body
    assert "Queue backlog" not in body
    if account_url := url_or_none("postmortems:my_account", owed.pk):
        assert f'href="{account_url}"' in body


def test_an_account_is_no_longer_owed_once_the_writeup_is_published(client, me):
    incident = make_incident()
    make_participant(incident=incident, user=me)
    make_postmortem(incident=incident, status=Postmortem.Status.PUBLISHED)

    assert client.get(HOME).context["accounts"] == []


def test_nothing_owed_says_thank_you(client, me):
    body = client.get(HOME).content.decode()

    assert "Nothing owed — thank you" in body
    assert "Nothing overdue — thank you" in body


# --- Write-ups I facilitate, and reviews waiting for me ------------------------------------------


def test_writeups_i_facilitate_that_are_not_published(client, me):
    me.is_facilitator = True
    me.save()
    none_yet = make_incident(facilitator=me, title="No write-up")
    draft = make_incident(facilitator=me, title="Draft one")
    make_postmortem(incident=draft)
    in_review = make_incident(facilitator=me, title="In review one")
    make_postmortem(incident=in_review, status=Postmortem.Status.IN_REVIEW, submitted_at=NOW)
    published = make_incident(facilitator=me, title="Published one")
    make_postmortem(incident=published, status=Postmortem.Status.PUBLISHED)
    someone_elses = make_incident(title="Someone else's draft")
    make_postmortem(incident=someone_elses)

    response = client.get(HOME)

    assert {p.incident for p in response.context["writeups"]} == {none_yet, draft, in_review}
    body = response.content.decode()
    assert "No write-up yet" in body
    assert "Submit it for review when it's ready" in body
    assert "waiting for a manager or another facilitator" in body


def test_reviews_waiting_for_me_follow_the_approval_rule(client):
    manager = make_user()
    make_team(managers=[manager])
    facilitator = make_user(is_facilitator=True)
    other_facilitator = make_user(is_facilitator=True)
    engineer = make_user()
    admin = make_user(is_superuser=True)
    internal = make_incident(facilitator=facilitator)
    postmortem = make_postmortem(incident=internal, status=Postmortem.Status.IN_REVIEW)
    restricted = make_incident(visibility=Incident.Visibility.RESTRICTED)
    hidden = make_postmortem(incident=restricted, status=Postmortem.Status.IN_REVIEW)
    make_postmortem(status=Postmortem.Status.DRAFT)

    for user in (manager, facilitator, other_facilitator, engineer, admin):
        client.force_login(user)
        reviews = client.get(HOME).context["reviews"]
        expected = {
            pm
            for pm in (postmortem, hidden)
            if access.visible_incidents(user).filter(pk=pm.incident_id).exists()
            and access.can_approve_postmortem(user, pm)
        }
        assert set(reviews) == expected, user
    assert expected == {postmortem, hidden}  # the admin sees both


def test_a_review_waiting_is_worded_as_the_reminder(client):
    manager = make_user()
    make_team(managers=[manager])
    make_postmortem(
        incident=make_incident(title="Replica lag"),
        status=Postmortem.Status.IN_REVIEW,
        submitted_at=NOW,
    )
    client.force_login(manager)

    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        body = client.get(HOME).content.decode()

    assert "Replica lag" in body
    assert "Submitted for review 2\xa0days ago" in body
    assert "approve it or send it back" in body


# --- My action items -----------------------------------------------------------------------------


def test_my_overdue_and_due_soon_items_are_worded_as_reminders(client, me):
    with time_machine.travel(NOW, tick=False):
        make_action_item(owner=me, title="Late", due_on=TODAY - timedelta(days=3))
        make_action_item(owner=me, title="Today", due_on=TODAY)
        make_action_item(owner=me, title="Tomorrow", due_on=TODAY + timedelta(days=1))
        make_action_item(owner=me, title="Later", due_on=TODAY + timedelta(days=6))
        make_action_item(owner=me, title="Next month", due_on=TODAY + timedelta(days=30))
        make_action_item(
            owner=me, title="Done late", status="done", due_on=TODAY - timedelta(days=3)
        )
        make_action_item(title="Someone else's", due_on=TODAY - timedelta(days=3))

        response = client.get(HOME)

    assert [item.title for item in response.context["overdue_items"]] == ["Late"]
    assert [item.title for item in response.context["due_soon_items"]] == [
        "Today",
        "Tomorrow",
        "Later",
    ]
    body = response.content.decode()
    assert "Overdue by 3 days" in body
    assert "Due today." in body
    assert "Due tomorrow" in body
    assert "Due in 6 days" in body
    assert "Next month" not in body and "Someone else" not in body


def test_my_items_on_incidents_i_cannot_see_are_not_listed(client, me):
    restricted = make_incident(visibility=Incident.Visibility.RESTRICTED)
    make_action_item(incident=restricted, owner=me, due_on=date(2000, 1, 1))

    assert client.get(HOME).context["overdue_items"] == []


def test_a_long_list_links_to_the_rest(client, me):
    incident = make_incident()
    ActionItem.objects.bulk_create(
        ActionItem(
            incident=incident, owner=me, title=f"Late {n}", due_on=date(2000, 1, 1), created_by=me
        )
        for n in range(12)
    )

    response = client.get(HOME)

    assert len(response.context["overdue_items"]) == 10
    assert response.context["more_overdue"] is True
    assert b"See all your overdue items" in response.content


# --- Managers ------------------------------------------------------------------------------------


def test_a_manager_sees_their_teams_overdue_items_linking_to_the_review(client):
    manager = make_user()
    payments = make_team(name="Payments", managers=[manager])
    platform = make_team(name="Platform", managers=[manager])
    make_team(name="Not mine")
    with time_machine.travel(NOW, tick=False):
        make_action_item(team=payments, due_on=TODAY - timedelta(days=1))
        make_action_item(team=payments, due_on=TODAY - timedelta(days=9))
        make_action_item(team=payments, due_on=TODAY + timedelta(days=2))
        make_action_item(team=payments, status="done", due_on=TODAY - timedelta(days=9))
        secret = make_incident(visibility=Incident.Visibility.RESTRICTED)
        make_action_item(team=platform, incident=secret, due_on=TODAY - timedelta(days=1))
        client.force_login(manager)

        response = client.get(HOME)

    teams = {team.name: team for team in response.context["teams"]}
    assert set(teams) == {"Payments", "Platform"}
    assert (teams["Payments"].overdue, teams["Payments"].due_soon) == (2, 1)
    assert teams["Platform"].overdue == 0  # the restricted incident's item stays hidden
    body = response.content.decode()
    review = reverse("postmortems:action_item_review")
    assert f'href="{review}?team={payments.pk}&amp;overdue=on"' in body
    assert "Your teams have 2 overdue items" in body


def test_someone_who_manages_no_team_sees_no_team_summary(client, me):
    response = client.get(HOME)

    assert response.context["teams"] == []
    assert b"Your teams' action items" not in response.content


# --- Open an incident ----------------------------------------------------------------------------


def test_facilitators_get_an_open_an_incident_button(client):
    facilitator = make_user(is_facilitator=True)
    client.force_login(facilitator)

    body = client.get(HOME).content.decode()

    if create_url := url_or_none("postmortems:incident_create"):
        assert f'href="{create_url}"' in body
        assert "Open an incident" in body


def test_engineers_get_no_open_an_incident_button(client, me):
    assert b"Open an incident" not in client.get(HOME).content


# --- Queries -------------------------------------------------------------------------------------


def fill(user, count: int) -> None:
    """`count` of everything the home page lists for `user`."""
    team = user.managed_teams.first()
    for n in range(count):
        incident = make_incident(facilitator=user if n % 2 else None)
        if not n % 2:
            make_participant(incident=incident, user=user, role=Participant.Role.RESPONDER)
            make_entry(incident=incident, author=user, shared=False)
        make_postmortem(
            incident=incident,
            status=Postmortem.Status.IN_REVIEW if n % 3 else Postmortem.Status.DRAFT,
        )
        make_action_item(incident=incident, owner=user, team=team, due_on=date(2000, 1, 1))
        make_action_item(incident=incident, owner=user, team=team)


@pytest.mark.parametrize("who", ["engineer", "facilitator", "manager", "admin"])
def test_the_home_page_makes_the_same_number_of_queries_however_much_needs_doing(
    client, django_assert_num_queries, who
):
    user = make_user(is_facilitator=who == "facilitator", is_superuser=who == "admin")
    if who == "manager":
        make_team(managers=[user])
    client.force_login(user)
    fill(user, 1)
    client.get(HOME)
    with CaptureQueriesContext(connection) as few:
        assert client.get(HOME).status_code == 200

    fill(user, 25)

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(HOME)
    assert len(response.context["overdue_items"]) == 10


def test_home_lists_my_upcoming_review_meetings_but_not_past_ones(client):
    me = make_user()
    coming = make_review_meeting(
        incident=make_incident(title="Replica lag review"),
        attendees=[me],
        starts_at=timezone.now() + timedelta(days=1),
    )
    make_review_meeting(
        incident=make_incident(title="Last month's review"),
        attendees=[me],
        starts_at=timezone.now() - timedelta(days=30),
    )
    make_review_meeting(incident=make_incident(title="Someone else's review"))
    client.force_login(me)

    response = client.get(HOME)

    assert response.context["meetings"] == [coming]
    assert "Replica lag review" in response.text
    assert "Last month's review" not in response.text
    assert "Someone else's review" not in response.text


def test_home_marks_a_write_up_overdue_by_the_same_rule_as_the_nudge_email(client):
    facilitator = make_user(is_facilitator=True)
    late = make_incident(
        facilitator=facilitator,
        title="Long resolved",
        resolved_at=timezone.now() - timedelta(days=30),
    )
    make_incident(facilitator=facilitator, title="Just resolved", resolved_at=timezone.now())
    client.force_login(facilitator)

    response = client.get(HOME)

    assert response.context["overdue_writeup_ids"] == {late.pk}
    assert response.text.count(">Overdue</span>") == 1
