"""Facilitator: reads the merged timeline, marks a key moment, writes the postmortem, submits."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from postmortems.models import ActionItem, ContributingFactor, Postmortem, TimelineEntry
from tests.e2e.support import a_while_ago, audit, local_input, sign_in
from tests.factories import PASSWORD, make_entry, make_incident, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)

LONDON = ZoneInfo("Europe/London")


def test_a_facilitator_reads_the_timeline_writes_the_postmortem_and_submits_it(page, live_server):
    facilitator = make_user(
        display_name="Fran Facilitator", is_facilitator=True, time_zone="Europe/London"
    )
    amita = make_user(display_name="Amita Rao")
    mei = make_user(display_name="Mei Chen")
    make_team(name="Storage", members=[mei])
    t0 = a_while_ago(LONDON, hours=6)
    incident = make_incident(
        facilitator=facilitator, title="Checkout errors after failover", started_at=t0
    )
    make_entry(
        incident=incident,
        author=amita,
        occurred_at=t0,
        kind="observation",
        action="",
        observation="Error rate up on the checkout graph.",
    )
    make_entry(
        incident=incident,
        author=amita,
        occurred_at=t0 + timedelta(minutes=2),
        action="Paged the database on-call.",
    )
    failover = make_entry(
        incident=incident,
        author=mei,
        occurred_at=t0 + timedelta(minutes=3),
        action="Failed over to the replica.",
        expectation="Errors would stop within a minute.",
    )
    make_entry(
        incident=incident,
        author=mei,
        occurred_at=t0 + timedelta(minutes=90),
        kind="observation",
        action="",
        observation="Replica caught up; errors stopped.",
    )
    make_entry(incident=incident, author=amita, shared=False, action="A private draft thought.")

    sign_in(page, live_server, facilitator.email, PASSWORD)
    audit(page, "home-facilitator")
    page.get_by_role("link", name="Incidents", exact=True).click()
    audit(page, "incident-list")
    page.get_by_role("link", name=re.compile(incident.title)).click()
    page.wait_for_url(f"**/incidents/{incident.pk}/")

    # The merged timeline: everyone's shared entries in time order, never a draft.
    timeline = page.locator("#timeline")
    expect(timeline.locator(".entry-card")).to_have_count(4)
    expect(timeline).to_contain_text("4 shared entries from 2 people")
    expect(page.get_by_text("A private draft thought.")).to_have_count(0)
    audit(page, "incident-page")

    # Perspectives: Amita's and Mei's moments two minutes apart sit side by side.
    timeline.get_by_label("View").select_option(label="Perspectives")
    timeline.get_by_role("button", name="Apply").click()
    perspective = page.locator("#timeline .perspective")
    expect(perspective).to_have_count(1)
    expect(perspective).to_contain_text("Paged the database on-call.")
    expect(perspective).to_contain_text("Failed over to the replica.")
    audit(page, "timeline-perspectives")

    # As known then: only what had happened 30 minutes in.
    timeline = page.locator("#timeline")
    timeline.get_by_label("As known at").fill(local_input(t0 + timedelta(minutes=30), LONDON))
    timeline.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("As known then.")).to_be_visible()
    expect(page.get_by_text("1 later entry is hidden.")).to_be_visible()
    expect(page.locator("#timeline")).not_to_contain_text("Replica caught up")
    audit(page, "timeline-as-known-then")
    page.get_by_role("link", name="Show the whole timeline").click()
    expect(page.locator("#timeline")).to_contain_text("Replica caught up")

    # A key moment, marked without touching Mei's words.
    page.locator(f"#entry-{failover.pk}").get_by_role(
        "link", name=re.compile("^Mark or ask")
    ).click()
    page.wait_for_url(f"**/entries/{failover.pk}/#annotate")
    page.get_by_label("Key moment").select_option(label="Mitigated")
    page.get_by_role("button", name="Save the mark").click()
    expect(page.get_by_text("Marked as a key moment: Mitigated.")).to_be_visible()
    audit(page, "entry-detail-annotate")
    failover.refresh_from_db()
    assert (failover.key_moment, failover.version) == ("mitigated", 1)

    # The write-up.
    page.get_by_role("link", name=incident.human_id).first.click()
    page.get_by_role("link", name="Open the postmortem").click()
    page.get_by_role("button", name="Start the postmortem").click()
    page.wait_for_url("**/postmortem/edit/")
    page.get_by_role("textbox", name="Summary").fill(
        "Checkout failed for **40 minutes** after a failover to a lagging replica."
    )
    page.get_by_role("textbox", name="Narrative").fill(
        "Amita saw the error rate rise and paged the on-call; Mei failed over."
    )
    audit(page, "postmortem-edit")
    page.get_by_role("button", name="Save and view").click()
    page.wait_for_url(f"**/incidents/{incident.pk}/postmortem/")
    expect(page.locator("#section-summary strong")).to_have_text("40 minutes")

    # A contributing factor, linked to the moment in Mei's account where it shows.
    page.get_by_role("link", name="Add a contributing factor").click()
    page.get_by_label("Category").select_option(label="Technical")
    page.get_by_label("Description").fill("The failover runbook did not check replica lag.")
    page.get_by_label(re.compile("Mei Chen: Failed over to the replica")).check()
    audit(page, "factor-create")
    page.get_by_role("button", name="Add the factor").click()
    page.wait_for_url("**/postmortem/#factors")
    factors = page.locator("#factors")
    expect(factors).to_contain_text("Seen in the timeline")
    expect(factors).to_contain_text("Mei Chen: Failed over to the replica.")
    factor = ContributingFactor.objects.get(postmortem__incident=incident)
    assert list(factor.entries.all()) == [failover]

    # Two action items, the first addressing the factor.
    for title, owner, factor_label in (
        ("Add a replica-lag check to the failover runbook", mei, str(factor)),
        ("Alert when replica lag passes 10 seconds", amita, "— none —"),
    ):
        page.get_by_role("link", name="New action item").click()
        page.wait_for_url("**/action-items/new/")
        page.get_by_label("Title").fill(title)
        page.get_by_label("Owner").fill(owner.email)
        page.get_by_label("Due date").fill((timezone.localdate() + timedelta(days=21)).isoformat())
        page.get_by_label("Contributing factor it addresses").select_option(label=factor_label)
        if owner == mei:
            audit(page, "action-item-create")
        page.get_by_role("button", name="Add action item").click()
        page.wait_for_url(re.compile(r"/action-items/\d+/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        if owner == mei:
            audit(page, "action-item-detail")
        page.get_by_role("link", name=incident.human_id, exact=False).first.click()
        page.get_by_role("link", name="Open the postmortem").click()

    first = ActionItem.objects.get(title__startswith="Add a replica-lag")
    assert (first.owner, first.contributing_factor, first.team.name) == (mei, factor, "Storage")
    expect(page.locator("#action-items tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_text("Done: submit for review.")).to_be_visible()
    assert Postmortem.objects.get(incident=incident).status == Postmortem.Status.IN_REVIEW
    audit(page, "postmortem-in-review")
    assert TimelineEntry.objects.get(pk=failover.pk).action == "Failed over to the replica."
