"""Two editors at once: the second save is not lost, it gets the conflict page with its text."""

import pytest
from playwright.sync_api import expect

from postmortems.models import Participant, Postmortem
from tests.e2e.support import audit, open_page, sign_in
from tests.factories import PASSWORD, make_incident, make_participant, make_postmortem, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_second_of_two_editors_gets_the_conflict_page_with_their_text_intact(
    live_server, new_context
):
    fran = make_user(display_name="Fran Facilitator", is_facilitator=True)
    noor = make_user(display_name="Noor Notes")
    incident = make_incident(facilitator=fran, title="Checkout errors after failover")
    make_participant(incident=incident, user=noor, role=Participant.Role.NOTE_TAKER)
    make_postmortem(incident=incident, summary="First draft.", narrative="Not yet.")
    first, second = open_page(new_context), open_page(new_context)
    for page, person in ((first, fran), (second, noor)):
        sign_in(page, live_server, person.email, PASSWORD)
        page.goto(f"{live_server.url}/incidents/{incident.pk}/postmortem/")
        page.get_by_role("link", name="Edit the write-up").click()
        page.wait_for_url("**/postmortem/edit/")

    first.get_by_role("textbox", name="Summary").fill("Fran's summary of the failover.")
    second.get_by_role("textbox", name="Summary").fill("Noor's summary, from the notes.")
    second.get_by_role("textbox", name="Narrative").fill("Noor's narrative.")

    first.get_by_role("button", name="Save", exact=True).click()
    expect(first.get_by_text("Saved as version 2.")).to_be_visible()
    second.get_by_role("button", name="Save", exact=True).click()

    expect(second.get_by_role("heading", level=1)).to_have_text(
        "Someone saved the write-up while you were editing"
    )
    expect(second.get_by_label("Your text").first).to_have_value("Noor's summary, from the notes.")
    expect(second.locator("#conflict-summary")).to_contain_text("Both of you changed this")
    expect(second.locator("#mine-narrative")).to_have_value("Noor's narrative.")
    expect(second.locator(".conflict-current").first).to_contain_text(
        "Fran's summary of the failover."
    )
    postmortem = Postmortem.objects.get(incident=incident)
    assert (postmortem.version, postmortem.summary) == (2, "Fran's summary of the failover.")
    audit(second, "postmortem-conflict")

    # Keeping theirs is a deliberate second save, over the version they have now seen.
    second.get_by_role("button", name="Save mine over it").click()
    expect(second.get_by_text("Saved as version 3.")).to_be_visible()
    postmortem.refresh_from_db()
    assert (postmortem.summary, postmortem.narrative) == (
        "Noor's summary, from the notes.",
        "Noor's narrative.",
    )
