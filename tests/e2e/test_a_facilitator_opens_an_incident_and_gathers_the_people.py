"""Facilitator: opens an incident, adds three people (one invited by email), sets the review."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from postmortems.models import Incident, Participant, ReviewMeeting
from tests.e2e.support import a_while_ago, audit, link_in, local_input, sent_to, sign_in
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_facilitator_opens_an_incident_adds_three_people_and_schedules_the_review(
    page, live_server, links_to_live_server
):
    make_user(
        email="fran@example.com",
        display_name="Fran Facilitator",
        is_facilitator=True,
        time_zone="Europe/Berlin",
    )
    make_user(email="amita@example.com", display_name="Amita Rao")
    make_user(email="mei@example.com", display_name="Mei Chen")
    started = a_while_ago(BERLIN, days=1)

    sign_in(page, live_server, "fran@example.com", PASSWORD)
    page.get_by_role("link", name="Incidents", exact=True).click()
    audit(page, "incident-list-empty")
    page.get_by_role("link", name="Open an incident").first.click()
    page.wait_for_url("**/incidents/new/")
    audit(page, "incident-create")

    page.get_by_label("Title").fill("Checkout errors after the replica failover")
    page.get_by_label("SEV2").check()
    page.get_by_label("Affected services").fill("checkout-api, Payments")
    page.get_by_label("Summary").fill("Checkout returned errors for a while after a failover.")
    # Key moments are typed in the facilitator's own zone (Berlin), as the form says.
    page.get_by_label("Started", exact=True).fill(local_input(started, BERLIN))
    page.get_by_label("Detected", exact=True).fill(
        local_input(started + timedelta(minutes=7), BERLIN)
    )
    page.get_by_label("Mitigated", exact=True).fill(
        local_input(started + timedelta(minutes=40), BERLIN)
    )
    page.get_by_role("button", name="Open the incident").click()
    page.wait_for_url("**/incidents/*/#participants")

    incident = Incident.objects.get()
    assert incident.severity == 2
    assert sorted(s.name for s in incident.services.all()) == ["checkout-api", "payments"]
    assert incident.started_at == started
    assert incident.detected_at == started + timedelta(minutes=7)
    assert incident.mitigated_at == started + timedelta(minutes=40)
    assert incident.resolved_at is None
    # Shown back in the facilitator's zone, with the durations worked out.
    moments = page.locator("section[aria-labelledby=moments-heading]")
    expect(moments).to_contain_text(started.astimezone(BERLIN).strftime("%H:%M"))
    expect(moments).to_contain_text("Time to detect: 7 min")
    expect(moments).to_contain_text("Time to mitigate: 40 min")
    audit(page, "incident-page-new")

    # Two people already here, one by email and one by name; the section updates in place (htmx).
    participants = page.locator("#participants")
    for name, typed in (("Amita Rao", "amita@example.com"), ("Mei Chen", "Mei Chen")):
        participants.get_by_text("Add a person").click()
        participants.get_by_label("Someone already here").fill(typed)
        participants.get_by_role("button", name="Add and ask for their account").click()
        expect(participants.get_by_text(f"{name} is added as responder.")).to_be_visible()

    # Someone new, by email: on the people page, which works the same way.
    page.goto(f"{live_server.url}/incidents/{incident.pk}/participants/")
    audit(page, "participants")
    participants = page.locator("#participants")
    participants.get_by_label("Or their email address").fill("nia@example.com")
    participants.get_by_label("Their name (for someone new)").fill("Nia Newcomer")
    participants.get_by_label("Role").select_option(label="Observer")
    participants.get_by_role("button", name="Add and ask for their account").click()
    expect(participants.get_by_text("Nia Newcomer is added as observer.")).to_be_visible()
    nia = Participant.objects.get(user__email="nia@example.com")
    expect(participants.locator(f"#participant-{nia.pk}").get_by_text("Invited")).to_be_visible()

    assert set(incident.participants.values_list("user__email", "role")) == {
        ("fran@example.com", "facilitator"),
        ("amita@example.com", "responder"),
        ("mei@example.com", "responder"),
        ("nia@example.com", "observer"),
    }
    # The invitation carries a working, signed link to set a password.
    [invitation] = [m for m in sent_to("nia@example.com") if "invited you" in m.subject]
    link = link_in(invitation, "/accounts/invitation/")
    assert link.startswith(live_server.url)
    # The people already here are asked for their account straight away.
    assert sent_to("amita@example.com") and sent_to("mei@example.com")

    # The review meeting, from the write-up's page.
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    page.get_by_role("link", name="Open the postmortem").click()
    page.wait_for_url("**/postmortem/")
    audit(page, "postmortem-not-started")
    page.get_by_role("link", name="Schedule it").click()
    page.wait_for_url("**/meeting/")
    audit(page, "meeting")
    starts = (timezone.now() + timedelta(days=3)).replace(
        hour=13, minute=30, second=0, microsecond=0
    )
    page.get_by_label("Starts").fill(local_input(starts, BERLIN))
    page.get_by_label("Duration (minutes)").fill("45")
    page.get_by_label("Place").fill("Room Lovelace")
    page.get_by_role("button", name="Save and send the invite").click()
    page.wait_for_url("**/postmortem/#meeting")
    expect(page.get_by_text("Review meeting saved")).to_be_visible()

    meeting = ReviewMeeting.objects.get(incident=incident)
    # Typed in Berlin time, stored as the same instant.
    assert meeting.starts_at == starts
    assert meeting.duration_minutes == 45
    # Everyone active on the incident is invited by default; Nia has not joined yet.
    assert set(meeting.attendees.values_list("email", flat=True)) == {
        "fran@example.com",
        "amita@example.com",
        "mei@example.com",
    }
    assert any("Room Lovelace" in m.body for m in sent_to("mei@example.com"))
