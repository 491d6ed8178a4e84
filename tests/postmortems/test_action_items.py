"""Creating an action item, its page, and changing its status, owner and due date."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from postmortems import fragments
from postmortems.models import ActionItem, ActionItemChange, Incident
from tests.factories import (
    make_action_item,
    make_factor,
    make_incident,
    make_participant,
    make_postmortem,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def create_url(incident: Incident) -> str:
    return reverse("postmortems:action_item_create", args=[incident.pk])


def update_url(item: ActionItem) -> str:
    return reverse("postmortems:action_item_update", args=[item.pk])


def valid_data(**overrides) -> dict:
    data = {
        "title": "Page the database on-call when failover starts",
        "description": "Use the failover event from the orchestrator.",
        "due_on": (timezone.localdate() + timedelta(days=10)).isoformat(),
        "priority": 2,
        "kind": "detect",
        "status": "open",
        "tracker_url": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def incident():
    return make_incident()


@pytest.fixture
def facilitator(client, incident):
    user = incident.created_by
    client.force_login(user)
    return user


# --- Creating ------------------------------------------------------------------------------------


def test_a_facilitator_adds_an_item_with_every_field(client, incident, facilitator):
    owner = make_participant(incident=incident).user
    team = make_team(members=[owner])
    factor = make_factor(postmortem=make_postmortem(incident=incident))

    response = client.post(
        create_url(incident),
        valid_data(
            owner=owner.pk,
            team=team.pk,
            contributing_factor=factor.pk,
            tracker_url="https://tracker.example.com/OPS-12",
            priority=1,
        ),
    )

    item = ActionItem.objects.get()
    assert response.status_code == 302
    assert response["Location"] == item.get_absolute_url()
    assert (item.owner, item.team, item.contributing_factor) == (owner, team, factor)
    assert item.incident == incident
    assert item.created_by == facilitator
    assert item.priority == ActionItem.Priority.HIGH
    assert item.tracker_url == "https://tracker.example.com/OPS-12"


def test_the_team_defaults_to_the_owners_first_team(client, incident, facilitator):
    owner = make_participant(incident=incident).user
    make_team(name="Zebra", members=[owner])
    first = make_team(name="Alpha", members=[owner])

    client.post(create_url(incident), valid_data(owner=owner.pk))

    assert ActionItem.objects.get().team == first


def test_an_item_without_owner_gets_no_team_and_is_still_saved(client, incident, facilitator):
    response = client.post(create_url(incident), valid_data(due_on=""))

    assert response.status_code == 302
    item = ActionItem.objects.get()
    assert item.owner is None and item.team is None and item.due_on is None


def test_an_item_created_as_done_gets_a_completion_time(client, incident, facilitator):
    with time_machine.travel(NOW, tick=False):
        client.post(create_url(incident), valid_data(status="done"))

    assert ActionItem.objects.get().completed_at == NOW


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"due_on": "2000-01-01"}, "due_on", "The due date is in the past"),
        ({"owner": "999999"}, "owner", "couldn't find that person"),
        ({"owner": "abc"}, "owner", "couldn't find that person"),
        ({"owner": "9" * 30}, "owner", "couldn't find that person"),
        ({"team": "9" * 30}, "team", "Select a valid choice"),
        ({"contributing_factor": "9" * 30}, "contributing_factor", "Select a valid choice"),
        ({"description": "x" * 10_001}, "description", "at most 10000 characters"),
        ({"title": "x" * 201}, "title", "Keep the title under 200 characters"),
        ({"title": ""}, "title", "This field is required"),
        ({"tracker_url": "ftp://files.example.com/x"}, "tracker_url", "http:// or https://"),
        ({"tracker_url": "javascript:alert(1)"}, "tracker_url", "Enter a valid URL"),
        ({"priority": "7"}, "priority", "Select a valid choice"),
        ({"kind": "blame"}, "kind", "Select a valid choice"),
        ({"status": "wont_do"}, "status", "Select a valid choice"),
        ({"due_on": "next tuesday"}, "due_on", "Enter a valid date"),
    ],
)
def test_bad_input_is_shown_back_with_a_clear_error_and_nothing_saved(
    client, incident, facilitator, overrides, field, message
):
    response = client.post(create_url(incident), valid_data(**overrides))

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert message.encode() in response.content.replace(b"&#x27;", b"'")
    assert not ActionItem.objects.exists()


def test_the_form_keeps_what_was_typed_after_an_error(client, incident, facilitator):
    response = client.post(
        create_url(incident), valid_data(due_on="2000-01-01", description="Keep my words")
    )

    assert b"Keep my words" in response.content
    assert b"Page the database on-call when failover starts" in response.content


@pytest.mark.parametrize("typed", ["mei@example.com", "Mei@Example.com", "Mei Chen"])
def test_the_owner_is_typed_as_an_email_or_a_name(client, incident, facilitator, typed):
    mei = make_user(email="mei@example.com", display_name="Mei Chen")

    response = client.post(create_url(incident), valid_data(owner=typed))

    assert response.status_code == 302
    assert ActionItem.objects.get().owner == mei


def test_the_form_lists_nobody_and_an_unknown_address_is_refused(client, incident, facilitator):
    someone = make_user(email="someone@example.com")

    page = client.get(create_url(incident)).content.decode()
    response = client.post(create_url(incident), valid_data(owner="nobody@example.com"))

    assert someone.email not in page
    assert 'type="text" name="owner"' in page
    assert "no active account matches “nobody@example.com”" in " ".join(
        response.context["form"].errors["owner"]
    )
    assert not ActionItem.objects.exists()


def test_the_change_form_shows_the_owners_address_and_takes_a_new_one(
    client, incident, facilitator
):
    item = make_action_item(incident=incident, owner=make_user(email="old@example.com"))
    new = make_user(email="new@example.com")

    page = client.get(item.get_absolute_url()).content.decode()
    post_update(client, item, owner="new@example.com", reason="Back from leave")

    assert 'value="old@example.com"' in page
    item.refresh_from_db()
    assert item.owner == new


def test_an_inactive_person_cannot_be_made_owner(client, incident, facilitator):
    gone = make_user(is_active=False)

    response = client.post(create_url(incident), valid_data(owner=gone.pk))

    assert "owner" in response.context["form"].errors
    assert not ActionItem.objects.exists()


def test_factor_choices_are_limited_to_this_incidents_postmortem(client, incident, facilitator):
    mine = make_factor(postmortem=make_postmortem(incident=incident))
    elsewhere = make_factor()

    form = client.get(create_url(incident)).context["form"]
    response = client.post(create_url(incident), valid_data(contributing_factor=elsewhere.pk))

    assert list(form.fields["contributing_factor"].queryset) == [mine]
    assert "contributing_factor" in response.context["form"].errors
    assert not ActionItem.objects.exists()


def test_an_incident_without_postmortem_offers_no_factors(client, incident, facilitator):
    form = client.get(create_url(incident)).context["form"]

    assert list(form.fields["contributing_factor"].queryset) == []


def test_a_restricted_incidents_item_must_be_owned_by_someone_who_can_see_it(client):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    client.force_login(incident.created_by)
    stranger = make_user()

    response = client.post(create_url(incident), valid_data(owner=stranger.pk))

    assert "isn't a participant of this restricted incident" in " ".join(
        response.context["form"].errors["owner"]
    )
    assert not ActionItem.objects.exists()


def test_quality_prompts_never_block_saving_and_show_on_the_item_page(
    client, incident, facilitator
):
    response = client.post(
        create_url(incident),
        valid_data(title="Be more careful", due_on=""),
        follow=True,
    )

    item = ActionItem.objects.get()
    kinds = {prompt.kind for prompt in response.context["prompts"]}
    assert item.title == "Be more careful"
    assert {"targets_person", "too_short", "no_owner", "no_due_date"} <= kinds
    assert b"Worth a second look" in response.content
    assert b"Aimed at a person" in response.content


def test_quality_prompts_show_on_the_form_when_it_comes_back_with_errors(
    client, incident, facilitator
):
    response = client.post(
        create_url(incident), valid_data(title="Investigate the lag", due_on="2000-01-01")
    )

    assert response.status_code == 200
    assert "vague" in {prompt.kind for prompt in response.context["prompts"]}
    assert b"Vague" in response.content


def test_a_participants_name_followed_by_should_is_flagged(client, incident, facilitator):
    make_participant(incident=incident, user=make_user(display_name="Mei Engineer"))

    response = client.post(
        create_url(incident),
        valid_data(title="Mei should review every schema migration by hand"),
        follow=True,
    )

    assert "targets_person" in {prompt.kind for prompt in response.context["prompts"]}


def test_blameless_findings_are_shown(client, incident, facilitator):
    item = make_action_item(incident=incident, title="Reduce human error in deploys")

    response = client.get(reverse("postmortems:action_item_detail", args=[item.pk]))

    assert [finding.phrase for finding in response.context["findings"]] == ["human error"]
    assert b"Hindsight or blame" in response.content
    assert "where an investigation starts" in response.content.decode()


def test_a_good_item_shows_no_prompts(client, incident, facilitator):
    item = make_action_item(
        incident=incident, title="Alert when replica lag exceeds 30 seconds for 5 minutes"
    )

    response = client.get(item.get_absolute_url())

    assert response.context["prompts"] == []
    assert b"Worth a second look" not in response.content


# --- The item page -------------------------------------------------------------------------------


def test_the_item_page_shows_every_field_and_the_change_log(client, incident, facilitator):
    factor = make_factor(
        postmortem=make_postmortem(incident=incident), description="The lag alert was missing"
    )
    owner = make_user(display_name="Andy Engineer")
    item = make_action_item(
        incident=incident,
        owner=owner,
        team=make_team(name="Payments"),
        contributing_factor=factor,
        description="Page the database on-call.",
        tracker_url="https://tracker.example.com/OPS-1",
        kind=ActionItem.Kind.DETECT,
    )
    ActionItemChange.objects.create(
        action_item=item,
        by=facilitator,
        field="due_on",
        old_value="2026-03-01",
        new_value="2026-03-15",
        reason="Waiting for the new metrics pipeline",
    )

    response = client.get(item.get_absolute_url())

    body = response.content.decode()
    for text in (
        item.title,
        "Page the database on-call.",
        "Andy Engineer",
        "Payments",
        "The lag alert was missing",
        "https://tracker.example.com/OPS-1",
        "Detect",
        incident.human_id,
        "Waiting for the new metrics pipeline",
        "2026-03-01",
        "2026-03-15",
        "Due date",
    ):
        assert text in body


def test_the_item_page_says_how_many_days_overdue(client, incident, facilitator):
    with time_machine.travel(NOW, tick=False):
        item = make_action_item(incident=incident, due_on=date(2026, 3, 7))
        response = client.get(item.get_absolute_url())

    assert b"Overdue by 3 days" in response.content


def test_the_item_page_query_count_does_not_grow_with_the_change_log(
    client, incident, facilitator, django_assert_max_num_queries
):
    item = make_action_item(incident=incident)
    client.get(item.get_absolute_url())
    with django_assert_max_num_queries(12) as few:
        client.get(item.get_absolute_url())
    ActionItemChange.objects.bulk_create(
        ActionItemChange(action_item=item, by=facilitator, field="status", new_value=str(n))
        for n in range(60)
    )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(item.get_absolute_url())
    assert response.status_code == 200


# --- Changing status, owner and due date ---------------------------------------------------------


def post_update(client, item: ActionItem, **overrides):
    data = {
        "status": item.status,
        "owner": item.owner_id or "",
        "due_on": item.due_on.isoformat() if item.due_on else "",
        "reason": "",
    }
    data.update(overrides)
    return client.post(update_url(item), data)


def test_done_sets_completed_at_and_reopening_clears_it(client, incident, facilitator):
    item = make_action_item(incident=incident)

    with time_machine.travel(NOW, tick=False):
        post_update(client, item, status="done")
    item.refresh_from_db()
    assert (item.status, item.completed_at) == ("done", NOW)

    post_update(client, item, status="open")
    item.refresh_from_db()
    assert (item.status, item.completed_at) == ("open", None)
    assert list(item.changes.values_list("old_value", "new_value")) == [
        ("Open", "Done"),
        ("Done", "Open"),
    ]


def test_wont_do_needs_a_reason(client, incident, facilitator):
    item = make_action_item(incident=incident)

    response = post_update(client, item, status="wont_do")

    assert response.status_code == 200
    assert "Say why this won't be done" in " ".join(response.context["form"].errors["reason"])
    item.refresh_from_db()
    assert item.status == "open"
    assert not ActionItemChange.objects.exists()


def test_wont_do_with_a_reason_is_recorded(client, incident, facilitator):
    item = make_action_item(incident=incident)

    response = post_update(
        client, item, status="wont_do", reason="The service is being retired in April"
    )

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == "wont_do"
    assert item.closed_reason == "The service is being retired in April"
    change = item.changes.get()
    assert (change.by, change.field, change.old_value, change.new_value) == (
        facilitator,
        "status",
        "Open",
        "Won't do",
    )
    assert change.reason == "The service is being retired in April"


def test_reopening_a_wont_do_item_clears_its_reason(client, incident, facilitator):
    item = make_action_item(incident=incident, status="wont_do", closed_reason="Retired")

    post_update(client, item, status="open")

    item.refresh_from_db()
    assert (item.status, item.closed_reason) == ("open", "")


def test_reassigning_needs_a_reason_and_is_recorded(client, incident, facilitator):
    item = make_action_item(incident=incident, owner=make_user(display_name="Andy Engineer"))
    new_owner = make_user(display_name="Mei Engineer")

    refused = post_update(client, item, owner=new_owner.pk)
    item.refresh_from_db()
    assert "handed on" in " ".join(refused.context["form"].errors["reason"])
    assert item.owner != new_owner

    post_update(client, item, owner=new_owner.pk, reason="Mei owns the alerting now")
    item.refresh_from_db()
    change = item.changes.get()
    assert item.owner == new_owner
    assert (change.field, change.old_value, change.new_value) == (
        "owner",
        "Andy Engineer",
        "Mei Engineer",
    )


def test_moving_the_due_date_needs_a_reason_and_is_recorded(client, incident, facilitator):
    with time_machine.travel(NOW, tick=False):
        item = make_action_item(incident=incident, due_on=date(2026, 3, 20))

        refused = post_update(client, item, due_on="2026-04-03")
        assert "due date is moving" in " ".join(refused.context["form"].errors["reason"])

        post_update(client, item, due_on="2026-04-03", reason="Waiting on the vendor")

    item.refresh_from_db()
    assert item.due_on == date(2026, 4, 3)
    assert list(item.changes.values_list("field", "old_value", "new_value", "reason")) == [
        ("due_on", "2026-03-20", "2026-04-03", "Waiting on the vendor")
    ]


def test_a_new_due_date_in_the_past_is_refused(client, incident, facilitator):
    item = make_action_item(incident=incident)

    response = post_update(client, item, due_on="2000-01-01", reason="Oops")

    assert "in the past" in " ".join(response.context["form"].errors["due_on"])
    item.refresh_from_db()
    assert item.due_on != date(2000, 1, 1)


def test_an_overdue_item_can_be_closed_without_moving_its_date(client, incident, facilitator):
    item = make_action_item(incident=incident, due_on=timezone.localdate() - timedelta(days=5))

    response = post_update(client, item, status="done")

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == "done"


def test_several_changes_at_once_are_each_recorded(client, incident, facilitator):
    item = make_action_item(incident=incident)
    new_owner = make_user()

    post_update(
        client,
        item,
        status="in_progress",
        owner=new_owner.pk,
        due_on=(item.due_on + timedelta(days=7)).isoformat(),
        reason="Handover after the reorg",
    )

    assert sorted(item.changes.values_list("field", flat=True)) == ["due_on", "owner", "status"]


def test_a_submission_that_changes_nothing_says_so(client, incident, facilitator):
    item = make_action_item(incident=incident)

    response = post_update(client, item)

    assert response.status_code == 200
    assert b"Nothing changed" in response.content
    assert not ActionItemChange.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "finished"},
        {"owner": "999999", "reason": "x"},
        {"owner": "abc", "reason": "x"},
        {"owner": "9" * 30, "reason": "x"},
        {"due_on": "soon", "reason": "x"},
        {"reason": "x" * 2001, "status": "done"},
    ],
)
def test_malformed_changes_are_refused_clearly(client, incident, facilitator, overrides):
    item = make_action_item(incident=incident)
    before = ActionItem.objects.values().get(pk=item.pk)

    response = post_update(client, item, **overrides)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert ActionItem.objects.values().get(pk=item.pk) == before
    assert not ActionItemChange.objects.exists()


def test_reassigning_a_restricted_item_to_someone_who_cannot_see_it_is_refused(client):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    client.force_login(incident.created_by)
    item = make_action_item(incident=incident, owner=make_participant(incident=incident).user)

    response = post_update(client, item, owner=make_user().pk, reason="Handover")

    assert "isn't a participant" in " ".join(response.context["form"].errors["owner"])


def test_update_accepts_only_post(client, incident, facilitator):
    item = make_action_item(incident=incident)

    assert client.get(update_url(item)).status_code == 405


def test_the_owner_changes_their_own_item(client):
    item = make_action_item()
    client.force_login(item.owner)

    response = post_update(client, item, status="in_progress")

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == "in_progress"


def test_the_incident_list_include_shows_items_and_the_add_button():
    incident = make_incident()
    item = make_action_item(incident=incident, title="Alert on replica lag beyond 30 s")

    items = list(incident.action_items.with_related())
    html = render_to_string(
        "postmortems/includes/action_item_incident_list.html",
        {
            "incident": incident,
            "action_items": items,
            "action_item_rows_html": fragments.incident_action_item_rows(
                items, timezone.localdate()
            ),
            "can_create_action_item": True,
        },
    )

    assert item.title in html
    assert reverse("postmortems:action_item_create", args=[incident.pk]) in html
