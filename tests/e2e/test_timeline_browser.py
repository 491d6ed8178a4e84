"""The account and timeline pages in a real browser: htmx in place, live prompts, axe-core."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e import support
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD, make_entry, make_incident, make_participant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, user) -> None:
    support.sign_in(page, live_server, user.email, PASSWORD)


serious_violations = support.serious_violations


def screenshot(page, name: str) -> None:
    """Desktop and phone screenshots; the page must not scroll sideways on a phone."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"timeline-{name}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=SCREENSHOTS / f"timeline-{name}-phone.png", full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at phone width"


def test_an_engineer_writes_shares_and_edits_their_account_in_place(page, live_server):
    engineer = make_user(display_name="Andy Engineer", time_zone="Europe/Berlin")
    incident = make_incident(title="Checkout errors after deploy")
    make_participant(incident=incident, user=engineer)
    sign_in(page, live_server, engineer)
    page.goto(f"{live_server.url}/incidents/{incident.pk}/my-account/")
    page.evaluate("window.__samePage = true")

    when = (timezone.localtime(timezone.now(), engineer.zone) - timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M"
    )
    page.get_by_label("When").fill(when)
    page.get_by_label("What I did").fill("I should have checked the replica first.")
    # The live prompt appears as they type, and never blocks.
    page.get_by_text("A note on phrasing").first.wait_for()
    page.get_by_label("What I saw").fill("Errors on the checkout graph.")
    screenshot(page, "my-account-typing")
    page.get_by_role("button", name="Share now").click()

    card = page.locator(".entry-card").first
    card.get_by_text("Errors on the checkout graph.").wait_for()
    assert page.evaluate("window.__samePage") is True  # swapped in place, no reload
    assert serious_violations(page) == []
    screenshot(page, "my-account-saved")

    card.get_by_role("link", name="Edit").click()
    page.locator(".entry-card--editing").wait_for()
    page.locator(".entry-card--editing textarea").first.fill("I checked the primary first.")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("I checked the primary first.").wait_for()
    assert page.evaluate("window.__samePage") is True
    assert page.get_by_text("Edited · v2").count() == 1


def test_the_timeline_and_entry_pages_pass_axe(page, live_server):
    facilitator = make_user(is_facilitator=True, display_name="Mara Facilitator")
    incident = make_incident(facilitator=facilitator, title="Payments latency")
    start = timezone.now() - timedelta(hours=3)
    people = [make_user(display_name=name) for name in ("Amita", "Mei", "Andy")]
    for n, person in enumerate(people * 3):
        make_entry(
            incident=incident,
            author=person,
            occurred_at=start + timedelta(minutes=n * 3),
            action=f"Step {n}: restarted the worker" if n % 2 else "",
            observation="Latency climbed on the p99 graph." if n % 2 == 0 else "",
            expectation="It would settle within a minute.",
            is_approximate=n % 4 == 0,
            key_moment="detected" if n == 2 else "",
            evidence_url="https://grafana.example.com/d/payments" if n == 1 else "",
        )
    make_entry(incident=incident, author=people[0], shared=False, action="Private draft")
    sign_in(page, live_server, facilitator)

    page.goto(f"{live_server.url}/incidents/{incident.pk}/?view=perspectives")
    assert page.get_by_text("Private draft").count() == 0
    assert serious_violations(page, within="#timeline") == []  # the rest is the incident page's
    screenshot(page, "incident-perspectives")

    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    entry = incident.entries.filter(key_moment="detected").get()
    page.goto(f"{live_server.url}/entries/{entry.pk}/")
    assert serious_violations(page) == []
    screenshot(page, "entry-detail")
