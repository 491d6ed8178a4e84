"""The review workflow: draft → in review → published (or back), not required, reopen."""

import pytest
import time_machine
from django.urls import reverse

from postmortems.models import Participant, Postmortem, PostmortemTransition
from tests.factories import make_incident, make_postmortem, make_team, make_user


def step_url(postmortem: Postmortem, action: str) -> str:
    return reverse("postmortems:postmortem_transition", args=[postmortem.incident_id, action])


@pytest.fixture
def facilitator():
    return make_user(is_facilitator=True, display_name="Fran")


@pytest.fixture
def postmortem(facilitator):
    return make_postmortem(incident=make_incident(facilitator=facilitator), summary="Words")


@pytest.fixture
def manager():
    person = make_user(display_name="Maya Manager")
    make_team(managers=[person])
    return person


@pytest.mark.django_db
def test_the_whole_happy_path_records_every_step_with_who_when_and_why(
    client, postmortem, facilitator, manager
):
    with time_machine.travel("2026-03-02 10:00Z", tick=False):
        client.force_login(facilitator)
        client.post(step_url(postmortem, "submit"))
    with time_machine.travel("2026-03-03 11:00Z", tick=False):
        client.force_login(manager)
        client.post(step_url(postmortem, "send_back"), {"comment": "Add the impact numbers"})
    with time_machine.travel("2026-03-04 09:00Z", tick=False):
        client.force_login(facilitator)
        client.post(step_url(postmortem, "submit"))
    with time_machine.travel("2026-03-05 16:30Z", tick=False):
        client.force_login(manager)
        client.post(step_url(postmortem, "approve"))

    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.PUBLISHED
    assert postmortem.published_at.isoformat() == "2026-03-05T16:30:00+00:00"
    assert postmortem.submitted_at.isoformat() == "2026-03-04T09:00:00+00:00"
    steps = list(
        postmortem.transitions.values_list(
            "from_status", "to_status", "by__display_name", "comment"
        )
    )
    assert steps == [
        ("draft", "in_review", "Fran", ""),
        ("in_review", "draft", "Maya Manager", "Add the impact numbers"),
        ("draft", "in_review", "Fran", ""),
        ("in_review", "published", "Maya Manager", ""),
    ]


@pytest.mark.django_db
def test_the_review_trail_is_shown_on_the_page(client, postmortem, facilitator, manager):
    client.force_login(facilitator)
    client.post(step_url(postmortem, "submit"))
    client.force_login(manager)
    client.post(step_url(postmortem, "send_back"), {"comment": "Say <more> about the cache"})
    client.force_login(facilitator)

    response = client.get(reverse("postmortems:postmortem_detail", args=[postmortem.incident_id]))

    html = response.content.decode()
    assert "Review trail" in html
    assert "In review → Draft" in html
    assert "Say &lt;more&gt; about the cache" in html
    assert "Maya Manager" in html


@pytest.mark.django_db
def test_the_facilitator_cannot_approve_their_own_write_up(client, postmortem, facilitator):
    client.force_login(facilitator)
    client.post(step_url(postmortem, "submit"))

    response = client.post(step_url(postmortem, "approve"))

    assert response.status_code == 403
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.IN_REVIEW
    assert postmortem.transitions.count() == 1


@pytest.mark.django_db
def test_a_co_facilitator_cannot_approve_either_but_another_incidents_facilitator_can(
    client, postmortem
):
    co_facilitator = make_user(is_facilitator=True)
    postmortem.incident.participants.create(
        user=co_facilitator, role=Participant.Role.CO_FACILITATOR
    )
    postmortem.status = Postmortem.Status.IN_REVIEW
    postmortem.save()
    colleague = make_user(is_facilitator=True)

    client.force_login(co_facilitator)
    assert client.post(step_url(postmortem, "approve")).status_code == 403
    client.force_login(colleague)
    assert client.post(step_url(postmortem, "approve")).status_code == 302

    postmortem.refresh_from_db()
    assert postmortem.is_published


@pytest.mark.django_db
def test_approving_a_draft_is_refused_with_a_clear_message_and_nothing_changes(
    client, postmortem, manager
):
    client.force_login(manager)

    response = client.post(step_url(postmortem, "approve"), follow=True)

    assert "cannot be moved that way" in response.content.decode()
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.DRAFT
    assert not PostmortemTransition.objects.exists()


@pytest.mark.django_db
def test_sending_back_needs_a_comment(client, postmortem, manager):
    postmortem.status = Postmortem.Status.IN_REVIEW
    postmortem.save()
    client.force_login(manager)

    response = client.post(step_url(postmortem, "send_back"), {"comment": "   "})

    assert response.status_code == 400
    assert "Please say why" in response.content.decode()
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.IN_REVIEW
    assert not PostmortemTransition.objects.exists()


@pytest.mark.django_db
def test_not_required_needs_a_reason_which_is_shown_on_the_page(client, postmortem, facilitator):
    client.force_login(facilitator)

    refused = client.post(step_url(postmortem, "not_required"), {"comment": ""})
    accepted = client.post(step_url(postmortem, "not_required"), {"comment": "A drill"})
    page = client.get(reverse("postmortems:postmortem_detail", args=[postmortem.incident_id]))

    assert refused.status_code == 400
    assert accepted.status_code == 302
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.NOT_REQUIRED
    assert postmortem.not_required_reason == "A drill"
    assert "A drill" in page.content.decode()


@pytest.mark.django_db
def test_a_published_write_up_is_read_only_until_reopened_with_a_reason(
    client, postmortem, facilitator, manager
):
    client.force_login(facilitator)
    client.post(step_url(postmortem, "submit"))
    client.force_login(manager)
    client.post(step_url(postmortem, "approve"))
    client.force_login(facilitator)
    detail = client.get(reverse("postmortems:postmortem_detail", args=[postmortem.incident_id]))
    assert "Edit the write-up" not in detail.content.decode()

    no_reason = client.post(step_url(postmortem, "reopen"), {"comment": ""})
    with_reason = client.post(step_url(postmortem, "reopen"), {"comment": "New logs found"})

    assert no_reason.status_code == 400
    assert with_reason.status_code == 302
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.DRAFT
    assert postmortem.published_at is None
    assert postmortem.transitions.last().comment == "New logs found"
    edit = client.get(reverse("postmortems:postmortem_edit", args=[postmortem.incident_id]))
    assert edit.status_code == 200


@pytest.mark.django_db
def test_the_page_offers_only_the_steps_this_person_may_take_now(
    client, postmortem, facilitator, manager
):
    detail = reverse("postmortems:postmortem_detail", args=[postmortem.incident_id])
    client.force_login(facilitator)
    html = client.get(detail).content.decode()
    assert "Submit for review" in html and "Mark as not required" in html
    assert "Approve and publish" not in html

    client.post(step_url(postmortem, "submit"))
    client.force_login(manager)
    html = client.get(detail).content.decode()
    assert "Approve and publish" in html and "Send back to draft" in html
    assert "Submit for review" not in html


@pytest.mark.django_db
def test_the_step_page_works_without_javascript(client, postmortem, facilitator):
    client.force_login(facilitator)

    response = client.get(step_url(postmortem, "not_required"))

    assert response.status_code == 200
    assert 'name="comment"' in response.content.decode()
    postmortem.refresh_from_db()
    assert postmortem.status == Postmortem.Status.DRAFT
