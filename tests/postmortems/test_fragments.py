"""Rows kept between requests (postmortems.fragments): the incident list's and the action-item
review's rows are rendered once, and every change to what a row shows appears at once."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.http import HttpResponse
from django.urls import reverse

from postmortems import fragments
from postmortems.models import ActionItem, Incident, Service
from tests.conftest import TemplateRenders
from tests.factories import make_action_item, make_incident, make_participant, make_team, make_user

pytestmark = pytest.mark.django_db

LIST = reverse("postmortems:incident_list")
REVIEW = reverse("postmortems:action_item_review")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def tbody(response) -> str:
    assert response.status_code == 200
    body = response.content.decode()
    return body[body.index("<tbody>") : body.index("</tbody>")]


def main(response) -> str:
    assert response.status_code == 200
    body = response.content.decode()
    return body[body.index("<main") : body.index("</main>")]


# --- The incident list ---------------------------------------------------------------------------


def test_the_same_page_of_incidents_is_rendered_once(client):
    make_incident(title="Cache stampede")
    client.force_login(make_user())

    with TemplateRenders("postmortems/includes/incident_rows.html") as renders:
        first = tbody(client.get(LIST))
        second = tbody(client.get(LIST))

    assert renders.count == 1
    assert first == second and "Cache stampede" in first


def test_every_change_to_an_incident_row_shows_at_once(client):
    incident = make_incident(title="Cache stampede")
    viewer = make_user()
    client.force_login(viewer)
    assert "Cache stampede" in tbody(client.get(LIST))

    Incident.objects.filter(pk=incident.pk).update(
        title="Cache stampede after deploy", status="resolved", severity=1
    )
    incident.services.add(Service.objects.create(name="edge-proxy"))
    make_participant(incident=incident)
    make_participant(incident=incident)
    html = tbody(client.get(LIST))

    assert "Cache stampede after deploy" in html
    assert ">Resolved<" in html and "badge-sev1" in html and "edge-proxy" in html
    assert '<td class="text-end d-none d-sm-table-cell">3</td>' in html


def test_each_viewer_sees_the_opening_day_in_their_own_zone(client):
    make_incident(created_at=datetime(2026, 3, 9, 22, 0, tzinfo=UTC))

    client.force_login(make_user(time_zone="UTC"))
    assert ">9 Mar 2026<" in tbody(client.get(LIST))
    client.force_login(make_user(time_zone="Asia/Tokyo"))
    assert ">10 Mar 2026<" in tbody(client.get(LIST))


def test_a_restricted_incident_kept_for_one_viewer_is_not_shown_to_another(client):
    insider = make_user()
    incident = make_incident(title="Secret outage", visibility=Incident.Visibility.RESTRICTED)
    make_participant(incident=incident, user=insider)

    client.force_login(insider)
    assert "Secret outage" in tbody(client.get(LIST))
    client.force_login(make_user())
    assert "Secret outage" not in client.get(LIST).content.decode()


# --- The action-item review ----------------------------------------------------------------------


@pytest.fixture
def manager(client):
    user = make_user(display_name="Irene Manager", time_zone="UTC")
    make_team(name="Payments", managers=[user])
    client.force_login(user)
    return user


def test_the_same_page_of_items_is_rendered_once_and_changes_show_at_once(client, manager):
    team = manager.managed_teams.get()
    item = make_action_item(title="Add a cache alarm", team=team, due_on=date(2026, 3, 20))

    with time_machine.travel(NOW, tick=False):
        with TemplateRenders("postmortems/includes/action_item_rows.html") as renders:
            first = tbody(client.get(REVIEW))
            second = tbody(client.get(REVIEW))
        assert renders.count == 1
        assert first == second and "Add a cache alarm" in first

        ActionItem.objects.filter(pk=item.pk).update(
            title="Add a cache alarm and a runbook", status="in_progress", priority=1
        )
        item.owner = make_user(display_name="Owen Owner")
        item.save(update_fields=["owner"])
        html = tbody(client.get(REVIEW))

    assert "Add a cache alarm and a runbook" in html
    assert ">In progress<" in html and "Owen Owner" in html


def test_overdue_days_and_ages_move_on_with_the_calendar(client, manager):
    team = manager.managed_teams.get()
    make_action_item(team=team, due_on=date(2026, 3, 8), created_at=NOW - timedelta(days=5))

    with time_machine.travel(NOW, tick=False):
        today = tbody(client.get(REVIEW))
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        tomorrow = tbody(client.get(REVIEW))

    assert "Overdue by 2 days" in today and ">5 d<" in today
    assert "Overdue by 3 days" in tomorrow and ">6 d<" in tomorrow


def breakdowns(response) -> str:
    assert response.status_code == 200
    body = response.content.decode()
    return body[body.index('id="by-owner-heading"') :]


def test_the_breakdowns_are_rendered_once_and_follow_every_change(client, manager):
    team = manager.managed_teams.get()
    owner = make_user(display_name="Olga Owner")
    item = make_action_item(team=team, owner=owner, due_on=date(2026, 3, 1))

    with time_machine.travel(NOW, tick=False):
        with TemplateRenders("postmortems/includes/action_item_breakdown.html") as renders:
            first = breakdowns(client.get(REVIEW))
            second = breakdowns(client.get(REVIEW))
        assert renders.count == 1 and first == second
        assert "Olga Owner" in first

        owner.display_name = "Olga Renamed"
        owner.save(update_fields=["display_name"])
        renamed = breakdowns(client.get(REVIEW))
        ActionItem.objects.filter(pk=item.pk).update(status="done", completed_at=NOW)
        done = breakdowns(client.get(REVIEW))

    assert "Olga Renamed" in renamed and "Olga Owner" not in renamed
    # Done today: no longer open or overdue, and counted as done in the last 30 days.
    row = done[done.index("Olga Renamed") :]
    cells = [cell.split("<")[0] for cell in row.split('<td class="text-end">')[1:5]]
    assert cells == ["0", "0", "0", "1"]


def filters_part(response) -> str:
    assert response.status_code == 200
    body = response.content.decode()
    return body[body.index('id="filters-heading"') : body.index('id="counts-heading"')]


def test_the_review_filters_are_rendered_once_and_follow_values_choices_and_errors(client, manager):
    with TemplateRenders("postmortems/includes/action_item_filters.html") as renders:
        first = filters_part(client.get(REVIEW, {"priority": "1"}))
        second = filters_part(client.get(REVIEW, {"priority": "1"}))
    assert renders.count == 1 and first == second
    assert '<option value="1" selected>High</option>' in first

    other = filters_part(client.get(REVIEW, {"priority": "3"}))
    make_team(name="Zebra squad")
    grown = filters_part(client.get(REVIEW, {"priority": "1"}))
    wrong = filters_part(client.get(REVIEW, {"owner": "nobody-like-this"}))

    assert '<option value="3" selected>Low</option>' in other and 'value="1" selected' not in other
    assert "Zebra squad" in grown and "Zebra squad" not in first
    assert "No one matches “nobody-like-this”." in wrong
    assert 'value="nobody-like-this"' in wrong


def test_review_rows_name_owners_the_figures_did_not_read():
    from postmortems.services.action_items import review_rows, with_owner_names

    owner = make_user(display_name="Nina Named", email="nina@example.com")
    make_action_item(owner=owner)
    make_action_item(owner=None)

    rows = list(review_rows(ActionItem.objects.order_by("pk")))
    named = with_owner_names(rows, {})

    assert [row[-1] for row in named] == [("Nina Named", "nina@example.com"), None]


def test_only_so_many_pages_are_kept(client, monkeypatch):
    monkeypatch.setattr(fragments, "PAGES_KEPT", 2)
    client.force_login(make_user())
    for n in range(3):
        make_incident(title=f"Incident number {n}")
        client.get(LIST)

    assert len(fragments._pages) == 2


# --- Selects -------------------------------------------------------------------------------------


def test_a_kept_select_still_marks_each_viewers_choice_and_follows_its_choices():
    from postmortems.forms.widgets import QuickSelect

    widget = QuickSelect(choices=[("", "Any team"), (1, "Payments"), (2, "Search")])
    first = widget.render("team", "1")
    again = widget.render("team", "1")
    other = widget.render("team", "2")
    widget.choices = [*widget.choices, (3, "<Edge>")]
    grown = widget.render("team", "1")

    assert first is again  # kept, not written again
    assert '<option value="1" selected>Payments</option>' in first
    assert '<option value="2" selected>Search</option>' in other
    assert 'value="1" selected' not in other
    assert '<option value="3">&lt;Edge&gt;</option>' in grown


# --- The incident page's action items ------------------------------------------------------------


def test_an_incidents_action_items_show_each_change_at_once(client):
    item = make_action_item(title="Alarm on queue depth", due_on=date(2026, 3, 12))
    client.force_login(make_user(time_zone="UTC"))
    page = item.incident.get_absolute_url()

    with time_machine.travel(NOW, tick=False):
        with TemplateRenders("postmortems/includes/action_item_incident_rows.html") as renders:
            client.get(page)
            client.get(page)
        assert renders.count == 1
        ActionItem.objects.filter(pk=item.pk).update(title="Alarm on queue depth and age")
        item.owner = make_user(display_name="Owen Owner")
        item.save(update_fields=["owner"])
        changed = client.get(page).content.decode()
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        later = client.get(page).content.decode()

    assert "Alarm on queue depth and age" in changed and "Owen Owner" in changed
    assert "Overdue" not in changed and "Overdue by 1 day" in later


# --- The digest page -----------------------------------------------------------------------------


def test_the_digest_page_is_rendered_once_and_shows_each_change_at_once(client):
    manager = make_user(time_zone="UTC")
    team = make_team(managers=[manager])
    item = make_action_item(team=team, title="Alarm on lag", due_on=date(2026, 3, 9))
    client.force_login(manager)
    page = reverse("postmortems:digest_preview")

    with time_machine.travel(NOW, tick=False):
        with TemplateRenders("postmortems/includes/digest_sections.html") as renders:
            first = main(client.get(page))
            second = main(client.get(page))
        assert renders.count == 1 and first == second
        assert "Alarm on lag" in first and ">1</strong> overdue" in first

        ActionItem.objects.filter(pk=item.pk).update(title="Alarm on lag and age")
        make_action_item(team=team, title="Second overdue", due_on=date(2026, 3, 8))
        changed = main(client.get(page))

    assert "Alarm on lag and age" in changed and "Second overdue" in changed
    assert ">2</strong> overdue" in changed


# --- Large pieces put into the rendered page -----------------------------------------------------


def test_a_piece_goes_where_the_slot_is_in_utf8_and_a_page_without_one_is_untouched():
    page = HttpResponse(f"<main>{fragments.slot()}</main><p>Zoë</p>")
    filled = fragments.fill(page, "<ol><li>Ada → Grace</li></ol>".encode())

    assert filled.content.decode() == "<main><ol><li>Ada → Grace</li></ol></main><p>Zoë</p>"
    assert fragments.fill(HttpResponse("<main></main>"), b"<ol></ol>").content == b"<main></main>"
