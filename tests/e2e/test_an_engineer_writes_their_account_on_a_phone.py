"""At phone width (390 px) the engineer's journey works, and no page scrolls sideways."""

import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from postmortems.models import TimelineEntry
from tests.e2e.conftest import PHONE
from tests.e2e.support import a_while_ago, audit, local_input, no_sideways_scroll, sign_in
from tests.factories import PASSWORD, make_entry, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db(transaction=True)

SYDNEY = ZoneInfo("Australia/Sydney")


def test_an_engineer_writes_shares_and_edits_their_account_at_phone_width(page, live_server):
    engineer = make_user(display_name="Lena Okafor", time_zone="Australia/Sydney")
    incident = make_incident(
        title="Checkout errors after a failover to a lagging replica in eu-west-1"
    )
    make_participant(incident=incident, user=engineer)
    make_entry(
        incident=incident,
        action="Paged the database on-call: https://chat.example.com/archives/C024BE91L/p1678"
        "901234567890?thread_ts=1678901234.567890&cid=C024BE91L",
    )
    when = a_while_ago(SYDNEY, hours=3)
    page.set_viewport_size(PHONE)

    sign_in(page, live_server, engineer.email, PASSWORD)
    no_sideways_scroll(page)
    page.get_by_role("button", name="Show navigation").click()
    page.get_by_role("link", name="Incidents", exact=True).click()
    page.wait_for_url("**/incidents/")
    audit(page, "phone-incident-list")
    page.get_by_role("link", name=re.compile("lagging replica")).click()
    page.wait_for_url(f"**/incidents/{incident.pk}/")
    audit(page, "phone-incident-page")
    page.get_by_role("link", name="My account").click()
    page.wait_for_url("**/my-account/")

    page.get_by_label("When").fill(local_input(when, SYDNEY))
    page.get_by_label("What I did").fill("Restarted the pool. Obviously the pool was the problem.")
    expect(page.get_by_text("A note on phrasing").first).to_be_visible()
    page.get_by_label("What I thought was happening").fill(
        "Connections were leaking from the checkout workers to the primary."
    )
    audit(page, "phone-my-account-typing")
    page.get_by_role("button", name="Share now").click()
    card = page.locator(".entry-card", has_text="Restarted the pool.")
    expect(card).to_be_visible()
    entry = TimelineEntry.objects.get(author=engineer)
    assert (entry.state, entry.occurred_at) == ("shared", when)
    audit(page, "phone-my-account-shared")

    card.get_by_role("link", name=re.compile(r"^Edit")).click()
    editing = page.locator(".entry-card--editing")
    editing.get_by_label("What I did").fill("Restarted the connection pool.")
    no_sideways_scroll(page)
    editing.get_by_role("button", name="Save changes").click()
    expect(page.locator(".entry-card", has_text="Restarted the connection pool.")).to_be_visible()
    no_sideways_scroll(page)
    entry.refresh_from_db()
    assert (entry.version, entry.action) == (2, "Restarted the connection pool.")
