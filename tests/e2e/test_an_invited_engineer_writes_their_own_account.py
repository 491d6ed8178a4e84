"""Engineer: joins from the invitation, writes their account, and can change only their words."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from accounts.models import User
from postmortems.models import Participant, TimelineEntry
from postmortems.services import incidents as incident_services
from tests.e2e.support import a_while_ago, audit, csrf_token, link_in, local_input, sent_to
from tests.factories import make_entry, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db(transaction=True)

NEW_YORK = ZoneInfo("America/New_York")
NEW_PASSWORD = "replica lag is not a person"


def test_an_invited_engineer_writes_a_draft_and_a_shared_entry_and_edits_only_their_own(
    page, live_server, links_to_live_server
):
    facilitator = make_user(
        display_name="Fran Facilitator", is_facilitator=True, time_zone="America/New_York"
    )
    incident = make_incident(facilitator=facilitator, title="Checkout errors after failover")
    colleague = make_user(display_name="Amita Rao")
    make_participant(incident=incident, user=colleague)
    theirs = make_entry(incident=incident, author=colleague, action="Paged the database on-call.")
    incident_services.add_participant(
        incident,
        user=None,
        email="nia@example.com",
        display_name="Nia Newcomer",
        role=Participant.Role.RESPONDER,
        by=facilitator,
    )
    started = a_while_ago(NEW_YORK, hours=5)

    # The link in the invitation email: set a password, and arrive signed in.
    [invitation] = [m for m in sent_to("nia@example.com") if "invited you" in m.subject]
    page.goto(link_in(invitation, "/accounts/invitation/"))
    audit(page, "invitation-accept")
    page.get_by_label("New password*", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_text("Welcome, Nia Newcomer")).to_be_visible()
    assert User.objects.get(email="nia@example.com").is_active
    audit(page, "home-engineer")

    page.get_by_role("link", name=f"Write my account for {incident.human_id}").click()
    page.wait_for_url("**/my-account/")
    audit(page, "my-account-empty")

    # A draft, with a blame-language prompt appearing while they type (it never blocks).
    form = page.locator("#account-panel form.entry-form")
    form.get_by_label("When").fill(local_input(started, NEW_YORK))
    form.get_by_label("What I did").fill(
        "Failed over to the replica. I should have checked the replica first."
    )
    expect(form.get_by_text("A note on phrasing").first).to_be_visible()
    expect(form.locator(".language-findings__phrase").first).to_contain_text("should have")
    audit(page, "my-account-blame-prompt")
    form.get_by_role("button", name="Save as draft").click()
    draft_card = page.locator(".entry-card", has_text="Failed over to the replica.")
    expect(draft_card.get_by_text("Draft", exact=True)).to_be_visible()

    # A second moment, shared straight away.
    form = page.locator("#account-panel form.entry-form")
    form.get_by_label("When").fill(local_input(started + timedelta(minutes=12), NEW_YORK))
    form.get_by_label("What I saw").fill("Replica lag climbing on the dashboard.")
    form.get_by_role("button", name="Share now").click()
    shared_card = page.locator(".entry-card", has_text="Replica lag climbing")
    expect(shared_card).to_be_visible()
    expect(shared_card.get_by_text("Draft", exact=True)).to_have_count(0)

    nia = User.objects.get(email="nia@example.com")
    mine = TimelineEntry.objects.filter(author=nia).order_by("occurred_at")
    assert [(e.state, e.occurred_at) for e in mine] == [
        ("draft", started),
        ("shared", started + timedelta(minutes=12)),
    ]
    audit(page, "my-account-two-entries")

    # Their own entry: edited in place, the earlier words kept as version 1.
    shared_card.get_by_role("link", name=re.compile(r"^Edit")).click()
    editing = page.locator(".entry-card--editing")
    editing.get_by_label("What I saw").fill("Replica lag climbing to 40 s on the dashboard.")
    audit(page, "my-account-editing")
    editing.get_by_role("button", name="Save changes").click()
    edited_card = page.locator(".entry-card", has_text="Replica lag climbing to 40 s")
    expect(edited_card.get_by_text("Edited · v2")).to_be_visible()
    shared = mine.get(state="shared")
    assert (shared.version, shared.observation) == (
        2,
        "Replica lag climbing to 40 s on the dashboard.",
    )

    # A colleague's entry: readable, with no edit control anywhere.
    page.get_by_role("link", name=f"{incident.human_id} {incident.title}").click()
    page.wait_for_url(f"**/incidents/{incident.pk}/")
    their_card = page.locator(f"#entry-{theirs.pk}")
    expect(their_card).to_contain_text("Paged the database on-call.")
    expect(their_card.get_by_role("link", name=re.compile(r"^Edit"))).to_have_count(0)
    mine_on_timeline = page.locator(f"#entry-{shared.pk}")
    expect(mine_on_timeline.get_by_role("link", name=re.compile(r"^Edit"))).to_have_count(1)
    expect(page.get_by_text("Failed over to the replica.")).to_have_count(0)  # drafts stay home
    their_card.get_by_role("link", name=re.compile(r"^Details and history")).click()
    page.wait_for_url(f"**/entries/{theirs.pk}/")
    expect(page.get_by_role("link", name=re.compile(r"^Edit"))).to_have_count(0)
    audit(page, "entry-detail-colleague")

    # A crafted POST to the colleague's edit URL, with a valid CSRF token, is refused.
    def crafted_edit(entry: TimelineEntry, words: str):
        prefix = f"entry-{entry.pk}"
        return page.request.post(
            f"{live_server.url}/entries/{entry.pk}/edit/",
            form={
                "csrfmiddlewaretoken": csrf_token(page),
                f"{prefix}-version": str(entry.version),
                f"{prefix}-occurred_at": local_input(entry.occurred_at, NEW_YORK),
                f"{prefix}-observation": words,
                f"{prefix}-kind": "observation",
                f"{prefix}-basis": "observed",
                "intent": "save",
            },
            max_redirects=0,
        )

    # The same request to their own entry goes through: the refusal below is not CSRF's.
    assert crafted_edit(shared, "Replica lag at 40 s.").status == 302
    assert TimelineEntry.objects.get(pk=shared.pk).observation == "Replica lag at 40 s."
    response = crafted_edit(theirs, "Rewritten by somebody else.")
    assert response.status == 403
    assert "CSRF" not in response.text()
    theirs_now = TimelineEntry.objects.get(pk=theirs.pk)
    assert (theirs_now.action, theirs_now.version) == ("Paged the database on-call.", 1)
    assert not theirs_now.revisions.exists()
