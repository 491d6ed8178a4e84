"""The incident list: filters, search, sorting, pagination, and what it never shows."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from postmortems.models import Incident, Service
from tests.factories import make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db

LIST_URL = reverse("postmortems:incident_list")
RESTRICTED = Incident.Visibility.RESTRICTED


def listed(response) -> list[str]:
    return [incident.title for incident in response.context["incidents"]]


@pytest.fixture
def viewer(client):
    user = make_user()
    client.force_login(user)
    return user


def test_the_list_shows_incidents_newest_first_with_their_details(client, viewer):
    older = make_incident(title="Older", created_at=datetime(2024, 1, 1, tzinfo=UTC))
    newer = make_incident(title="Newer", severity=1)
    newer.services.add(Service.objects.create(name="checkout-api"))
    make_participant(incident=newer)

    response = client.get(LIST_URL)

    assert listed(response) == ["Newer", "Older"]
    body = response.content.decode()
    assert 'class="badge badge-sev1"' in body
    assert "checkout-api" in body
    assert newer.human_id in body and older.human_id in body
    assert response.context["incidents"][0].participant_count == 2


def test_an_empty_list_says_so_and_offers_to_open_one_to_facilitators(client):
    client.force_login(make_user(is_facilitator=True))

    body = client.get(LIST_URL).content.decode()

    assert "No incidents yet" in body
    assert reverse("postmortems:incident_create") in body


def test_filters_that_match_nothing_have_their_own_empty_state(client, viewer):
    make_incident(status="investigating")

    body = client.get(LIST_URL, {"status": "resolved"}).content.decode()

    assert "No incidents match these filters" in body


def test_filter_by_status(client, viewer):
    make_incident(title="Open", status="investigating")
    make_incident(title="Done", status="resolved")

    assert listed(client.get(LIST_URL, {"status": "resolved"})) == ["Done"]


def test_filter_by_severity(client, viewer):
    make_incident(title="Critical", severity=1)
    make_incident(title="Minor", severity=3)

    assert listed(client.get(LIST_URL, {"severity": "1"})) == ["Critical"]


def test_filter_by_service(client, viewer):
    checkout = Service.objects.create(name="checkout-api")
    make_incident(title="Checkout").services.add(checkout, Service.objects.create(name="db"))
    make_incident(title="Elsewhere")

    response = client.get(LIST_URL, {"service": "checkout-api"})

    assert listed(response) == ["Checkout"]
    # The service filter must not multiply or shrink the participant count.
    assert response.context["incidents"][0].participant_count == 1


def test_filter_by_participant(client, viewer):
    andy = make_user()
    with_andy = make_incident(title="With Andy")
    make_participant(incident=with_andy, user=andy)
    make_participant(incident=with_andy)
    make_incident(title="Without Andy")

    response = client.get(LIST_URL, {"participant": andy.pk})

    assert listed(response) == ["With Andy"]
    assert response.context["incidents"][0].participant_count == 3


def test_filter_by_opening_date_uses_whole_days_in_the_viewers_zone(client):
    client.force_login(make_user(time_zone="America/New_York"))
    # 03:00 UTC on 2 March is still 1 March in New York.
    make_incident(title="Late on the 1st", created_at=datetime(2024, 3, 2, 3, 0, tzinfo=UTC))
    make_incident(title="On the 2nd", created_at=datetime(2024, 3, 2, 15, 0, tzinfo=UTC))
    make_incident(title="On the 3rd", created_at=datetime(2024, 3, 3, 15, 0, tzinfo=UTC))

    on_first = client.get(LIST_URL, {"opened_from": "2024-03-01", "opened_to": "2024-03-01"})
    from_second = client.get(LIST_URL, {"opened_from": "2024-03-02"})
    until_second = client.get(LIST_URL, {"opened_to": "2024-03-02"})

    assert listed(on_first) == ["Late on the 1st"]
    assert listed(from_second) == ["On the 3rd", "On the 2nd"]
    assert listed(until_second) == ["On the 2nd", "Late on the 1st"]


def test_a_backwards_date_range_is_reported_and_ignored(client, viewer):
    make_incident(title="Any")

    response = client.get(LIST_URL, {"opened_from": "2024-03-05", "opened_to": "2024-03-01"})

    assert listed(response) == ["Any"]
    assert "is before" in response.content.decode()


@pytest.mark.parametrize("text", ["INC-{pk}", "inc-{pk}", "INC {pk}", "{pk}", " {pk} "])
def test_search_by_human_id(client, viewer, text):
    wanted = make_incident(title="Wanted")
    make_incident(title="Other")

    assert listed(client.get(LIST_URL, {"q": text.format(pk=wanted.pk)})) == ["Wanted"]


def test_search_by_words_in_the_title_ignores_case(client, viewer):
    make_incident(title="Checkout errors after deploy")
    make_incident(title="Search slow")

    assert listed(client.get(LIST_URL, {"q": "CHECKOUT"})) == ["Checkout errors after deploy"]


def test_search_with_a_number_too_large_for_an_id_does_not_crash(client, viewer):
    make_incident(title="Anything")

    response = client.get(LIST_URL, {"q": "INC-99999999999999999999999"})

    assert response.status_code == 200
    assert listed(response) == []


def test_sort_by_severity_then_newest(client, viewer):
    make_incident(title="Minor", severity=4)
    make_incident(title="Critical old", severity=1, created_at=datetime(2024, 1, 1, tzinfo=UTC))
    make_incident(title="Critical new", severity=1)

    response = client.get(LIST_URL, {"sort": "severity"})

    assert listed(response) == ["Critical new", "Critical old", "Minor"]


def test_sort_oldest_first(client, viewer):
    make_incident(title="First", created_at=datetime(2024, 1, 1, tzinfo=UTC))
    make_incident(title="Second", created_at=datetime(2024, 2, 1, tzinfo=UTC))

    assert listed(client.get(LIST_URL, {"sort": "oldest"})) == ["First", "Second"]


@pytest.mark.parametrize("sort", ["title", "-pk", "visibility", "created_by__password", ""])
def test_unknown_sort_keys_are_ignored(client, viewer, sort):
    make_incident(title="First", created_at=datetime(2024, 1, 1, tzinfo=UTC))
    make_incident(title="Second", created_at=datetime(2024, 2, 1, tzinfo=UTC))

    response = client.get(LIST_URL, {"sort": sort})

    assert response.status_code == 200
    assert listed(response) == ["Second", "First"]


@pytest.mark.parametrize(
    "params",
    [
        {"severity": "abc"},
        {"severity": "9"},
        {"status": "on-fire"},
        {"service": "no-such-service"},
        {"participant": "abc"},
        {"participant": "99999999999999999999999"},
        {"opened_from": "2020-13-45"},
        {"opened_to": "yesterday"},
        {"opened_from": "0001-01-01"},
        {"opened_to": "9999-12-31"},
        {"page": "-1"},
        {"page": "0"},
        {"page": "99999"},
        {"page": "abc"},
        {"page": "1e9"},
        {"q": "x" * 5000},
        {"q": "a\x00b"},
    ],
)
def test_malformed_filters_never_break_the_list(client, viewer, params):
    make_incident(title="Still listed")

    response = client.get(LIST_URL, params)

    assert response.status_code == 200
    assert listed(response) == ["Still listed"]


def test_a_malformed_filter_is_reported_while_the_others_apply(client, viewer):
    make_incident(title="Critical", severity=1, status="resolved")
    make_incident(title="Minor", severity=4, status="resolved")
    make_incident(title="Open", severity=1, status="investigating")

    response = client.get(LIST_URL, {"severity": "1", "status": "resolved", "opened_from": "x"})

    assert listed(response) == ["Critical"]
    assert "Some filters were not understood" in response.content.decode()


def _make_many(count: int, **fields) -> None:
    facilitator = make_user(is_facilitator=True)
    for n in range(count):
        make_incident(facilitator=facilitator, title=f"Incident {n:03}", **fields)


def test_pages_hold_25_incidents_and_keep_the_filters(client, viewer):
    _make_many(30, severity=2)
    make_incident(title="Other severity", severity=3)

    first = client.get(LIST_URL, {"severity": "2"})
    second = client.get(LIST_URL, {"severity": "2", "page": "2"})

    assert len(listed(first)) == 25
    assert len(listed(second)) == 5
    assert "Other severity" not in listed(first) + listed(second)
    assert 'href="?severity=2&amp;page=2"' in first.content.decode()
    assert 'href="?severity=2&amp;page=1"' in second.content.decode()


def test_a_page_past_the_end_shows_the_last_page(client, viewer):
    _make_many(30)

    response = client.get(LIST_URL, {"page": "99999"})

    assert response.context["page_obj"].number == 2


# --- Restricted incidents never leak -------------------------------------------------------------


def test_restricted_incidents_are_not_listed_for_people_not_on_them(client, viewer):
    make_incident(title="Internal")
    make_incident(title="Secret", visibility=RESTRICTED)

    response = client.get(LIST_URL)

    assert listed(response) == ["Internal"]
    assert "Secret" not in response.content.decode()


def test_restricted_incidents_do_not_leak_through_search_or_filters(client, viewer):
    secret = make_incident(title="Secret", visibility=RESTRICTED, severity=1)
    secret.services.add(Service.objects.create(name="vault"))

    for params in (
        {"q": "Secret"},
        {"q": secret.human_id},
        {"q": str(secret.pk)},
        {"service": "vault"},
        {"severity": "1"},
        {"participant": secret.created_by.pk},
    ):
        response = client.get(LIST_URL, params)
        assert listed(response) == [], params
        assert response.context["page_obj"].paginator.count == 0


def test_restricted_incidents_are_listed_for_their_participants_and_admins(client):
    secret = make_incident(title="Secret", visibility=RESTRICTED)
    responder = make_participant(incident=secret).user

    for user in (responder, secret.created_by, make_user(is_superuser=True)):
        client.force_login(user)
        assert listed(client.get(LIST_URL)) == ["Secret"]


def test_anonymous_people_are_sent_to_sign_in(client):
    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- Query count ---------------------------------------------------------------------------------


def _count_queries(client, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, params)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "params", [{}, {"q": "Incident", "service": "payments", "sort": "severity", "severity": "2"}]
)
def test_the_list_issues_the_same_number_of_queries_for_1_and_100_incidents(
    client, django_assert_num_queries, params
):
    viewer = make_user()
    client.force_login(viewer)
    payments = Service.objects.create(name="payments")

    def add(count):
        for n in range(count):
            incident = make_incident(title=f"Incident {n}", severity=2)
            incident.services.add(payments, Service.objects.create(name=f"svc-{count}-{n}"))
            make_participant(incident=incident)

    add(1)
    with_one = _count_queries(client, params)
    add(99)
    make_incident(title="Hidden", visibility=RESTRICTED)

    with django_assert_num_queries(with_one):
        response = client.get(LIST_URL, params)
    assert len(listed(response)) == 25
