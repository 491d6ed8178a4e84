"""The write-up in a real browser: start, preview in place with htmx, save, review, axe-core."""

import pytest

from postmortems.models import Postmortem
from tests.e2e import support
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD, make_entry, make_incident, make_team, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, user) -> None:
    support.sign_in(page, live_server, user.email, PASSWORD)


serious_violations = support.serious_violations


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"writeups-{name}.png", full_page=True)


def test_a_facilitator_starts_previews_in_place_saves_and_submits(page, live_server):
    facilitator = make_user(is_facilitator=True, display_name="Fran Facilitator")
    incident = make_incident(facilitator=facilitator, title="Checkout errors after deploy")
    make_entry(incident=incident, action="Rolled back deploy 42")
    sign_in(page, live_server, facilitator)

    page.goto(f"{live_server.url}/incidents/{incident.pk}/postmortem/")
    assert serious_violations(page) == []
    page.get_by_role("button", name="Start the postmortem").click()
    page.wait_for_url("**/postmortem/edit/")

    page.evaluate("window.__samePage = true")
    page.get_by_role("textbox", name="Summary").fill(
        "The cache **expired** and <script>alert(1)</script> stayed inert."
    )
    page.get_by_role("button", name="Preview").click()
    preview = page.locator(".postmortem-preview").first
    preview.locator("strong", has_text="expired").wait_for()
    # htmx swapped the editor in place: same page, text still in the box, nothing saved.
    assert page.evaluate("window.__samePage") is True
    assert "**expired**" in page.get_by_role("textbox", name="Summary").input_value()
    assert Postmortem.objects.get(incident=incident).version == 1
    assert serious_violations(page) == []
    screenshot(page, "edit-preview")

    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved as version 2.").wait_for()
    page.goto(f"{live_server.url}/incidents/{incident.pk}/postmortem/")
    page.locator(".postmortem-section strong", has_text="expired").wait_for()
    page.get_by_role("button", name="Submit for review").click()
    page.get_by_text("In review", exact=True).first.wait_for()
    assert Postmortem.objects.get(incident=incident).status == Postmortem.Status.IN_REVIEW
    assert serious_violations(page) == []
    screenshot(page, "detail-in-review")


def test_a_reviewer_sends_back_with_a_comment_without_javascript_help(page, live_server):
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    Postmortem.objects.create(
        incident=incident,
        status=Postmortem.Status.IN_REVIEW,
        summary="Draft words",
        created_by=facilitator,
        updated_by=facilitator,
    )
    manager = make_user(display_name="Maya Manager")
    make_team(managers=[manager])
    sign_in(page, live_server, manager)

    page.goto(f"{live_server.url}/incidents/{incident.pk}/postmortem/")
    page.get_by_text("Send back to draft…").click()
    page.get_by_label("Reason (required)").first.fill("Please add the impact numbers")
    page.get_by_role("button", name="Send back to draft", exact=True).click()

    page.wait_for_url(f"**/incidents/{incident.pk}/postmortem/")
    postmortem = Postmortem.objects.get(incident=incident)
    assert postmortem.status == Postmortem.Status.DRAFT
    assert postmortem.transitions.get().comment == "Please add the impact numbers"


def test_the_conflict_page_passes_an_accessibility_audit(page, live_server):
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    from postmortems.services import writeups as services

    postmortem = services.start_postmortem(incident, by=facilitator)
    sign_in(page, live_server, facilitator)
    page.goto(f"{live_server.url}/incidents/{incident.pk}/postmortem/edit/")
    page.get_by_role("textbox", name="Summary").fill("My version of events")
    data = postmortem.section_data()
    data["summary"] = "Someone else's version"
    services.save_postmortem(postmortem, data, base_version=1, by=facilitator)

    page.get_by_role("button", name="Save", exact=True).click()

    page.get_by_text("Someone saved the write-up while you were editing").wait_for()
    assert page.get_by_label("Your text").input_value() == "My version of events"
    assert serious_violations(page) == []
    screenshot(page, "conflict")
