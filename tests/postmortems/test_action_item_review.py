"""The managers' review across incidents: filters, counts, sorting, pagination, CSV export."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from postmortems.models import ActionItem, Incident
from tests.factories import (
    make_action_item,
    make_incident,
    make_participant,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db
REVIEW = reverse("postmortems:action_item_review")
EXPORT = reverse("postmortems:action_item_export_csv")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)


def listed(response) -> list[str]:
    return [item.title for item in response.context["page_obj"].object_list]


def csv_table(response) -> list[list[str]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def manager(client):
    user = make_user(display_name="Irene Manager")
    make_team(name="Irene's first team", managers=[user])
    client.force_login(user)
    return user


# --- Scope and filters ---------------------------------------------------------------------------


def test_a_manager_sees_their_teams_items_by_default(client, manager):
    mine = make_team(name="Payments", managers=[manager])
    make_action_item(title="Ours", team=mine)
    make_action_item(title="Someone else's", team=make_team())

    response = client.get(REVIEW)

    assert listed(response) == ["Ours"]


def test_all_teams_shows_everything_visible(client, manager):
    make_team(managers=[manager])
    make_action_item(title="A", team=make_team())
    make_action_item(title="B")

    assert sorted(listed(client.get(REVIEW, {"team": "all"}))) == ["A", "B"]


def test_filtering_by_one_team(client, manager):
    payments = make_team(name="Payments")
    make_action_item(title="Payments item", team=payments)
    make_action_item(title="Other item", team=make_team())

    assert listed(client.get(REVIEW, {"team": payments.pk})) == ["Payments item"]


def test_filtering_by_owner(client, manager):
    andy = make_user()
    make_action_item(title="Andy's", owner=andy)
    make_action_item(title="Not Andy's")

    assert listed(client.get(REVIEW, {"team": "all", "owner": andy.pk})) == ["Andy's"]


def test_filtering_by_owner_typed_as_an_email_or_a_name(client, manager):
    andy = make_user(email="andy@example.com", display_name="Andy Bell")
    make_action_item(title="Andy's", owner=andy)
    make_action_item(title="Not Andy's")

    by_email = client.get(REVIEW, {"team": "all", "owner": "Andy@Example.com"})
    by_name = client.get(REVIEW, {"team": "all", "owner": "andy bell"})

    assert listed(by_email) == listed(by_name) == ["Andy's"]


def test_an_owner_link_with_an_id_shows_the_owners_address(client, manager):
    andy = make_user(email="andy@example.com")
    make_action_item(title="Andy's", owner=andy)

    response = client.get(REVIEW, {"team": "all", "owner": andy.pk})

    assert listed(response) == ["Andy's"]
    assert 'value="andy@example.com"' in response.content.decode()


def test_an_owner_nobody_matches_is_reported_and_ignored(client, manager):
    make_action_item(title="Still listed")

    response = client.get(REVIEW, {"team": "all", "owner": "nobody@example.com"})

    assert listed(response) == ["Still listed"]
    assert "Owner" in response.context["ignored_filters"]
    body = response.content.decode()
    assert '<p class="small text-danger mb-0 mt-1" id="filter-owner-error">' in body
    assert "No one matches “nobody@example.com”." in body
    # The field is outlined and tied to its message, for screen readers too.
    owner_input = re.search(r'<input[^>]*name="owner"[^>]*>', body).group(0)
    assert "is-invalid" in owner_input and 'aria-invalid="true"' in owner_input
    assert 'aria-describedby="filter-owner-error"' in owner_input


def test_the_review_lists_nobody_however_many_people_there_are(client, manager):
    for n in range(30):
        make_user(email=f"person{n}@example.com")

    body = client.get(REVIEW, {"team": "all"}).content.decode()

    assert "person7@example.com" not in body


def test_status_defaults_to_open_and_in_progress(client, manager):
    for status in ("open", "in_progress", "done"):
        make_action_item(title=status, status=status)
    make_action_item(title="wont_do", status="wont_do", closed_reason="Retired")

    assert sorted(listed(client.get(REVIEW, {"team": "all"}))) == ["in_progress", "open"]
    assert listed(client.get(REVIEW, {"team": "all", "status": "done"})) == ["done"]
    both = client.get(REVIEW + "?team=all&status=done&status=wont_do")
    assert sorted(listed(both)) == ["done", "wont_do"]


def test_overdue_only_and_due_window(client, manager, frozen):
    make_action_item(title="Overdue", due_on=TODAY - timedelta(days=2))
    make_action_item(title="In 5 days", due_on=TODAY + timedelta(days=5))
    make_action_item(title="In 20 days", due_on=TODAY + timedelta(days=20))
    make_action_item(title="No date", due_on=None)

    assert listed(client.get(REVIEW, {"team": "all", "overdue": "on"})) == ["Overdue"]
    assert listed(client.get(REVIEW, {"team": "all", "due_window": 7})) == ["In 5 days"]
    assert listed(client.get(REVIEW, {"team": "all", "due_window": 30})) == [
        "In 5 days",
        "In 20 days",
    ]


def test_priority_and_incident_severity_filters(client, manager):
    sev1 = make_incident(severity=Incident.Severity.SEV1)
    make_action_item(title="High on SEV1", incident=sev1, priority=1)
    make_action_item(title="Low on SEV1", incident=sev1, priority=3)
    make_action_item(title="High on SEV3", priority=1)

    assert sorted(listed(client.get(REVIEW, {"team": "all", "severity": 1}))) == [
        "High on SEV1",
        "Low on SEV1",
    ]
    assert listed(client.get(REVIEW, {"team": "all", "severity": 1, "priority": 1})) == [
        "High on SEV1"
    ]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("due", ["soon", "later", "undated"]),
        ("-due", ["later", "soon", "undated"]),
        ("priority", ["later", "soon", "undated"]),
        ("age", ["undated", "soon", "later"]),
        ("-age", ["later", "soon", "undated"]),
        ("owner", ["later", "soon", "undated"]),
        ("-owner", ["undated", "soon", "later"]),
        ("bogus", ["soon", "later", "undated"]),
        ("created_by__password", ["soon", "later", "undated"]),
    ],
)
def test_sorting_uses_allowed_keys_only(client, manager, frozen, sort, expected):
    make_action_item(
        title="undated",
        due_on=None,
        priority=3,
        owner=make_user(display_name="Cy"),
        created_at=NOW - timedelta(days=9),
    )
    make_action_item(
        title="soon",
        due_on=TODAY + timedelta(days=1),
        priority=2,
        owner=make_user(display_name="Bea"),
        created_at=NOW - timedelta(days=5),
    )
    make_action_item(
        title="later",
        due_on=TODAY + timedelta(days=9),
        priority=1,
        owner=make_user(display_name="Al"),
        created_at=NOW - timedelta(days=1),
    )

    response = client.get(REVIEW, {"team": "all", "sort": sort})

    assert response.status_code == 200
    assert listed(response) == expected


@pytest.mark.parametrize(
    "query",
    [
        {"team": "abc"},
        {"team": "999999"},
        {"due_window": "-5"},
        {"due_window": "9999999999999999999999"},
        {"page": "xyz"},
        {"page": "-1"},
        {"page": "99999"},
        {"owner": "abc"},
        {"owner": "999999"},
        {"owner": "99999999999999999999999999"},
        {"team": "99999999999999999999999999"},
        {"status": "finished"},
        {"priority": "urgent"},
        {"severity": "0"},
        {"overdue": "maybe"},
        {"sort": "'; DROP TABLE x"},
    ],
)
def test_malformed_filters_are_ignored_never_an_error(client, manager, query):
    make_action_item(title="Still listed")

    response = client.get(REVIEW, {**query, "team": query.get("team", "all")})
    export = client.get(EXPORT, {**query, "team": query.get("team", "all")})

    assert response.status_code == 200
    assert export.status_code == 200
    b"".join(export.streaming_content)


def test_ignored_filters_are_reported(client, manager):
    response = client.get(REVIEW, {"team": "abc", "due_window": "-5"})

    assert set(response.context["ignored_filters"]) == {"Team", "Due"}
    assert b"were ignored" in response.content


def test_pagination_keeps_the_filters(client, manager):
    incident = make_incident()
    owner = make_user()
    ActionItem.objects.bulk_create(
        ActionItem(incident=incident, owner=owner, title=f"Item {n:03}", created_by=owner)
        for n in range(120)
    )

    response = client.get(REVIEW, {"team": "all", "priority": 2, "sort": "age", "page": 2})

    assert response.context["page_obj"].number == 2
    assert len(listed(response)) == 50
    body = response.content.decode()
    assert "page=3" in body
    assert "priority=2" in body and "sort=age" in body and "team=all" in body


def test_someone_who_is_not_a_reviewer_sees_only_their_own_items(client):
    engineer = make_user()
    make_action_item(title="Mine", owner=engineer)
    make_action_item(title="A colleague's")
    client.force_login(engineer)

    response = client.get(REVIEW, {"owner": make_user().pk, "team": "all"})

    assert listed(response) == ["Mine"]
    assert "owner" not in response.context["filters"].fields
    assert response.context["owner_rows"] == []


def test_restricted_incidents_items_never_appear_to_people_outside_them(client, manager):
    restricted = make_incident(visibility=Incident.Visibility.RESTRICTED)
    team = make_team(managers=[manager])
    make_action_item(title="Secret", incident=restricted, team=team, owner=manager)

    response = client.get(REVIEW, {"team": "all", "owner": manager.pk})
    rows = csv_table(client.get(EXPORT, {"team": "all"}))

    assert "Secret" not in listed(response)
    assert response.context["counts"]["open"] == 0
    assert all("Secret" not in row for row in rows)
    assert not any(row["team_id"] == team.pk for row in response.context["team_rows"])


# --- Counts --------------------------------------------------------------------------------------


def test_counts_for_the_filtered_scope(client, manager, frozen):
    team = make_team(managers=[manager])
    days = timedelta(days=1)
    # Open, created 2, 4 and 10 days ago: median age 4 days.
    make_action_item(team=team, due_on=TODAY - 3 * days, created_at=NOW - 2 * days)
    make_action_item(team=team, due_on=TODAY + 7 * days, created_at=NOW - 4 * days)
    make_action_item(team=team, status="in_progress", due_on=TODAY, created_at=NOW - 10 * days)
    # Done recently, done long ago, won't do, and an open item outside the manager's teams.
    make_action_item(team=team, status="done", completed_at=NOW - 29 * days)
    make_action_item(team=team, status="done", completed_at=NOW - 31 * days)
    make_action_item(team=team, status="wont_do", closed_reason="Retired")
    make_action_item(team=make_team(), due_on=TODAY - days)

    counts = client.get(REVIEW).context["counts"]

    assert counts == {
        "open": 3,
        "overdue": 1,
        "due_soon": 2,
        "done_recently": 1,
        "median_age_days": 4,
    }


def test_the_median_age_of_an_even_number_of_items_is_the_midpoint(client, manager, frozen):
    for age in (1, 2, 5, 9):
        make_action_item(created_at=NOW - timedelta(days=age))

    response = client.get(REVIEW, {"team": "all"})

    assert response.context["counts"]["median_age_days"] == 3.5
    assert b"3.5 d" in response.content


def test_with_no_open_items_there_is_no_median(client, manager):
    response = client.get(REVIEW, {"team": "all"})

    assert response.context["counts"]["median_age_days"] is None
    assert b"No action items match these filters" in response.content


def test_counts_ignore_the_status_filter_so_done_still_counts(client, manager, frozen):
    make_action_item(status="done", completed_at=NOW - timedelta(days=1))

    counts = client.get(REVIEW, {"team": "all"}).context["counts"]

    assert counts["done_recently"] == 1


def test_breakdowns_per_owner_and_per_team(client, manager, frozen):
    payments = make_team(name="Payments")
    andy = make_user(display_name="Andy")
    mei = make_user(display_name="Mei")
    make_action_item(owner=andy, team=payments, due_on=TODAY - timedelta(days=1))
    make_action_item(owner=andy, team=payments, due_on=TODAY + timedelta(days=2))
    make_action_item(owner=mei, team=payments, status="done", completed_at=NOW)

    response = client.get(REVIEW, {"team": "all"})

    owners = {row["owner__display_name"]: row for row in response.context["owner_rows"]}
    teams = {row["team__name"]: row for row in response.context["team_rows"]}
    assert (owners["Andy"]["open"], owners["Andy"]["overdue"], owners["Andy"]["due_soon"]) == (
        2,
        1,
        1,
    )
    assert owners["Mei"]["done_recently"] == 1
    assert (teams["Payments"]["open"], teams["Payments"]["done_recently"]) == (2, 1)


def test_the_owner_breakdown_shows_the_most_overdue_owners_and_the_rest_on_request(
    client, manager, frozen
):
    team = make_team(name="Payments")
    # Owner n has n overdue items: the fifteen with the most are shown, worst first.
    for n in range(1, 18):
        owner = make_user(display_name=f"Owner {n:02}")
        for _ in range(n):
            make_action_item(owner=owner, team=team, due_on=TODAY - timedelta(days=3))

    response = client.get(REVIEW, {"team": "all", "status": "open"})

    shown = [row["owner__display_name"] for row in response.context["owner_rows"]]
    assert shown == [f"Owner {n:02}" for n in range(17, 2, -1)]
    assert "The 15 of 17 owners with the most overdue items." in response.text
    # The link keeps the filters and asks for everyone.
    assert "?team=all&amp;status=open&amp;owners=all#by-owner-heading" in response.text

    everyone = client.get(REVIEW, {"team": "all", "status": "open", "owners": "all"})

    assert len(everyone.context["owner_rows"]) == 17
    assert "All 17 owners." in everyone.text
    assert everyone.context["ignored_filters"] == []


def test_overdue_items_are_labelled_in_words(client, manager, frozen):
    make_action_item(title="Late", due_on=TODAY - timedelta(days=4))
    make_action_item(title="One day late", due_on=TODAY - timedelta(days=1))

    body = client.get(REVIEW, {"team": "all"}).content.decode()

    assert "Overdue by 4 days" in body
    assert "Overdue by 1 day<" in body


# --- Query counts --------------------------------------------------------------------------------


def bulk_items(count: int, teams, incidents, owners) -> None:
    creator = owners[0]
    ActionItem.objects.bulk_create(
        ActionItem(
            incident=incidents[n % len(incidents)],
            owner=owners[n % len(owners)],
            team=teams[n % len(teams)],
            title=f"Bulk item {n}",
            due_on=date(2026, 3, 1) + timedelta(days=n % 40),
            priority=1 + n % 3,
            status=("open", "in_progress", "done")[n % 3],
            created_by=creator,
        )
        for n in range(count)
    )


@pytest.mark.parametrize("who", ["manager", "facilitator", "engineer", "admin"])
def test_the_review_page_makes_the_same_number_of_queries_for_1_or_500_items(
    client, django_assert_num_queries, who
):
    user = make_user(is_facilitator=who == "facilitator", is_superuser=who == "admin")
    teams = [make_team(managers=[user] if who == "manager" else []) for _ in range(3)]
    owners = [user] + [make_user() for _ in range(9)]
    incidents = [make_incident() for _ in range(5)]
    restricted = make_incident(visibility=Incident.Visibility.RESTRICTED)
    make_participant(incident=restricted, user=user)
    incidents.append(restricted)
    bulk_items(1, teams, incidents, owners)
    client.force_login(user)
    url = REVIEW + "?sort=owner"
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200

    bulk_items(499, teams, incidents, owners)

    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.context["page_obj"].paginator.count > 30


def test_the_export_makes_the_same_number_of_queries_for_1_or_500_items(
    client, manager, django_assert_num_queries
):
    teams = [make_team(managers=[manager])]
    owners = [make_user() for _ in range(3)]
    incidents = [make_incident()]
    bulk_items(1, teams, incidents, owners)
    with CaptureQueriesContext(connection) as one:
        csv_table(client.get(EXPORT, {"status": ["open", "in_progress", "done"]}))

    bulk_items(499, teams, incidents, owners)

    with django_assert_num_queries(len(one.captured_queries)):
        rows = csv_table(client.get(EXPORT, {"status": ["open", "in_progress", "done"]}))
    assert len(rows) == 501


# --- CSV -----------------------------------------------------------------------------------------


def test_the_export_has_a_dated_filename_and_the_filtered_rows(client, manager, frozen):
    make_action_item(title="Open one", team=make_team(managers=[manager]))
    make_action_item(title="Done one", status="done", team=make_team(managers=[manager]))

    response = client.get(EXPORT)

    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="action-items-2026-03-10.csv"'
    rows = csv_table(response)
    assert rows[0][:3] == ["id", "title", "incident"]
    assert [row[1] for row in rows[1:]] == ["Open one"]


@pytest.mark.parametrize(
    "title",
    [
        '=HYPERLINK("https://evil.example","click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
    ],
)
def test_the_export_neutralises_formulas(client, manager, title):
    owner = make_user(display_name="=cmd|' /C calc'!A0")
    make_action_item(title=title, owner=owner, description="ignored")

    rows = csv_table(client.get(EXPORT, {"team": "all"}))

    row = rows[1]
    assert row[1] == "'" + title
    assert row[5] == "'=cmd|' /C calc'!A0"
    for cell in row:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_the_export_follows_the_same_filters_as_the_page(client, manager, frozen):
    make_action_item(title="Overdue", due_on=TODAY - timedelta(days=1))
    make_action_item(title="Later", due_on=TODAY + timedelta(days=20))

    rows = csv_table(client.get(EXPORT, {"team": "all", "overdue": "on"}))

    assert [row[1] for row in rows[1:]] == ["Overdue"]
    assert rows[1][12] == "1"  # days overdue


def test_the_export_link_keeps_the_filters(client, manager):
    response = client.get(REVIEW, {"team": "all", "priority": 1, "page": 2})

    assert f'href="{EXPORT}?team=all&amp;priority=1"' in response.content.decode()
