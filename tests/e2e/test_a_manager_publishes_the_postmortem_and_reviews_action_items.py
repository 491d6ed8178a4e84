"""Manager: approves and publishes, exports the PDF, reviews their team's overdue items."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from postmortems.models import Postmortem
from postmortems.services.action_items import CSV_HEADER
from tests.e2e.support import audit, sign_in
from tests.factories import (
    PASSWORD,
    make_action_item,
    make_incident,
    make_postmortem,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_manager_publishes_exports_and_follows_up_their_teams_overdue_items(page, live_server):
    facilitator = make_user(display_name="Fran Facilitator", is_facilitator=True)
    incident = make_incident(facilitator=facilitator, title="Checkout errors after failover")
    make_postmortem(
        incident=incident,
        status=Postmortem.Status.IN_REVIEW,
        submitted_at=timezone.now() - timedelta(hours=3),
        summary="Checkout failed for **40 minutes** after a failover to a lagging replica.",
    )
    manager = make_user(display_name="Maya Manager", time_zone="Europe/Paris")
    pat, sam = make_user(display_name="Pat Payments"), make_user(display_name="Sam Search")
    payments = make_team(name="Payments", members=[pat], managers=[manager])
    search = make_team(name="Search", members=[sam])
    # Overdue is counted in the manager's own zone, where "today" may already be tomorrow.
    today = timezone.localdate(timezone=manager.zone)
    make_action_item(
        incident=incident,
        title="Rotate the replica credentials",
        owner=pat,
        team=payments,
        due_on=today - timedelta(days=5),
    )
    make_action_item(
        incident=incident,
        title="Document the failover",
        owner=pat,
        team=payments,
        due_on=today + timedelta(days=10),
    )
    make_action_item(
        incident=incident,
        title="Raise the connection pool limit",
        owner=pat,
        team=payments,
        due_on=today - timedelta(days=4),
        status="done",
        completed_at=timezone.now() - timedelta(days=3),
    )
    make_action_item(
        incident=incident,
        title="Reindex nightly",
        owner=sam,
        team=search,
        due_on=today - timedelta(days=3),
    )

    sign_in(page, live_server, manager.email, PASSWORD)
    audit(page, "home-manager")
    page.get_by_role("link", name=f"{incident.human_id} · {incident.title}").click()
    page.wait_for_url(f"**/incidents/{incident.pk}/postmortem/")
    audit(page, "postmortem-review")
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_text("Done: approve and publish.")).to_be_visible()
    postmortem = Postmortem.objects.get(incident=incident)
    assert postmortem.status == Postmortem.Status.PUBLISHED
    assert postmortem.transitions.get().by == manager
    audit(page, "postmortem-published")

    with page.expect_download() as download:
        page.get_by_role("link", name="PDF export").click()
    assert download.value.suggested_filename.endswith(".pdf")
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    # The action-item review, narrowed to their own teams' overdue items.
    page.get_by_role("link", name="Action items", exact=True).click()
    page.wait_for_url("**/action-items/")
    audit(page, "action-item-review")
    page.get_by_label("Team", exact=True).select_option(label="My teams")
    page.get_by_label("Overdue only").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"overdue=on"))
    rows = page.locator(".action-item-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Rotate the replica credentials")
    audit(page, "action-item-review-overdue")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV of the filtered items").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header == CSV_HEADER
    assert len(lines) == 1
    row = dict(zip(header, lines[0], strict=True))
    assert (row["title"], row["team"], row["owner"], row["days overdue"]) == (
        "Rotate the replica credentials",
        "Payments",
        "Pat Payments",
        "5",
    )

    rows.first.get_by_role("link", name="Rotate the replica credentials").click()
    page.wait_for_url(re.compile(r"/action-items/\d+/$"))
    expect(page.get_by_text("Overdue by 5 days").first).to_be_visible()
    audit(page, "action-item-detail-overdue")

    page.get_by_role("link", name="My digest").click()
    page.wait_for_url("**/digest/")
    expect(page.get_by_role("heading", name="Your teams: Payments")).to_be_visible()
    expect(page.get_by_text("Rotate the replica credentials")).to_be_visible()
    expect(page.get_by_text("Reindex nightly")).to_have_count(0)
    audit(page, "digest")
