"""No JavaScript: every form posts and redirects, so an account can be written without it."""

import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from postmortems.models import TimelineEntry
from tests.e2e.support import a_while_ago, audit, local_input, open_page, sign_in
from tests.factories import PASSWORD, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db(transaction=True)

TOKYO = ZoneInfo("Asia/Tokyo")


def test_an_engineer_adds_shares_and_edits_an_entry_with_javascript_off(live_server, new_context):
    engineer = make_user(display_name="Kenji Sato", time_zone="Asia/Tokyo")
    incident = make_incident(title="Search results empty for an hour")
    make_participant(incident=incident, user=engineer)
    when = a_while_ago(TOKYO, hours=2)
    page = open_page(new_context, java_script_enabled=False)

    sign_in(page, live_server, engineer.email, PASSWORD)
    page.get_by_role("link", name=f"Write my account for {incident.human_id}").click()
    page.wait_for_url("**/my-account/")
    assert page.evaluate("typeof window.htmx") == "undefined"  # no script of the site ran

    page.get_by_label("When").fill(local_input(when, TOKYO))
    page.get_by_label("Approximately").check()
    page.get_by_label("What I did").fill("I should have restarted the search indexer sooner.")
    page.get_by_label("What I expected").fill("Results to come back within a minute.")
    page.get_by_role("button", name="Save as draft").click()
    # A plain POST, then a redirect back to the page with the new entry; the phrasing prompt
    # that nothing could show while they typed comes with it, from the server.
    page.wait_for_url(re.compile(r"/my-account/(\?page=\d+)?#entry-\d+$"))
    entry = TimelineEntry.objects.get(author=engineer)
    assert (entry.state, entry.occurred_at, entry.is_approximate) == ("draft", when, True)
    card = page.locator(f"#entry-{entry.pk}")
    expect(card).to_contain_text("I should have restarted the search indexer sooner.")
    expect(card.get_by_text("Notes on phrasing")).to_be_visible()
    expect(page.get_by_text("Saved as a draft.")).to_be_visible()
    audit(page, "my-account-no-js")

    card.get_by_role("button", name=re.compile(r"^Share")).click()
    expect(page.get_by_text("Shared. Everyone who can see the incident")).to_be_visible()
    assert TimelineEntry.objects.get(pk=entry.pk).state == "shared"

    # Without htmx, Edit is a link to its own page.
    page.locator(f"#entry-{entry.pk}").get_by_role("link", name=re.compile(r"^Edit")).click()
    page.wait_for_url(f"**/entries/{entry.pk}/edit/")
    audit(page, "entry-edit")
    page.get_by_label("What I did").fill("I restarted the search indexer.")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(f"**/entries/{entry.pk}/")
    expect(page.get_by_text("This is version 2")).to_be_visible()
    entry.refresh_from_db()
    assert (entry.version, entry.action) == (2, "I restarted the search indexer.")
