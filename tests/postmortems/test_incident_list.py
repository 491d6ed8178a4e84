"""The incident list: filters, search, sorting, pagination, and what it never shows."""

import html
import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from postmortems.forms.incidents import IncidentFilterForm
from postmortems.models import Incident, Service
from postmortems.views import incidents as incident_views
from tests.conftest import needs
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


@pytest.mark.parametrize("typed", ["andy@example.com", "ANDY@EXAMPLE.COM", "Andy Bell", "bell"])
def test_filter_by_participant_typed_as_an_email_or_a_name(client, viewer, typed):
    andy = make_user(email="andy@example.com", display_name="Andy Bell")
    make_participant(incident=make_incident(title="With Andy"), user=andy)
    make_incident(title="Without Andy")

    response = client.get(LIST_URL, {"participant": typed})

    assert listed(response) == ["With Andy"]
    # The box shows who was found.
    assert 'value="andy@example.com"' in response.content.decode()


def test_a_participant_nobody_matches_is_reported_and_ignored(client, viewer):
    make_incident(title="Still listed")

    response = client.get(LIST_URL, {"participant": "nobody@example.com"})

    assert listed(response) == ["Still listed"]
    assert "No one matches “nobody@example.com”." in response.content.decode()


def test_a_name_that_fits_several_people_asks_for_more(client, viewer):
    make_user(email="andy@example.com", display_name="Andy Bell")
    make_user(email="andrea@example.com", display_name="Andrea Bell")
    make_incident(title="Still listed")

    response = client.get(LIST_URL, {"participant": "bell"})

    body = response.content.decode()
    assert listed(response) == ["Still listed"]
    assert "More than one person matches “bell”" in body
    assert "Andy Bell (andy@example.com)" in body


def test_the_filters_list_nobody_however_many_people_there_are(client, viewer):
    for n in range(30):
        make_user(email=f"person{n}@example.com")

    body = client.get(LIST_URL).content.decode()

    assert "person7@example.com" not in body
    assert body.count("<option") < 20


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


def _link(response, rel: str) -> str | None:
    """The query string of the page's "prev" or "next" link, or None."""
    match = re.search(rf'href="\?([^"]*)" rel="{rel}"', response.content.decode())
    return html.unescape(match.group(1)) if match else None


def _query(response) -> str:
    """The query string the response was fetched with."""
    return response.wsgi_request.META["QUERY_STRING"]


def _walk(client, params: dict, rel: str = "next", start: str | None = None) -> list[list[str]]:
    """Every page from the first (or `start`), following one kind of link."""
    response = client.get(f"{LIST_URL}?{start}") if start else client.get(LIST_URL, params)
    pages = [listed(response)]
    while (link := _link(response, rel)) is not None:
        response = client.get(f"{LIST_URL}?{link}")
        assert response.status_code == 200
        pages.append(listed(response))
        assert len(pages) < 20, "the links go round in circles"
    return pages


def test_pages_hold_25_incidents_and_keep_the_filters(client, viewer):
    _make_many(30, severity=2)
    make_incident(title="Other severity", severity=3)

    first = client.get(LIST_URL, {"severity": "2"})
    older = _link(first, "next")
    second = client.get(f"{LIST_URL}?{older}")
    newer = _link(second, "prev")
    back = client.get(f"{LIST_URL}?{newer}")

    assert len(listed(first)) == 25
    assert len(listed(second)) == 5
    assert "Other severity" not in listed(first) + listed(second)
    assert sorted(listed(first) + listed(second)) == [f"Incident {n:03}" for n in range(30)]
    assert older.startswith("severity=2&after=")
    assert newer.startswith("severity=2&before=")
    assert listed(back) == listed(first)
    assert _link(first, "prev") is None and _link(second, "next") is None
    assert "Older →" in first.content.decode() and "← Newer" in second.content.decode()


@pytest.mark.parametrize("sort", ["newest", "oldest", "severity"])
def test_following_the_links_shows_every_incident_once_in_order_both_ways(client, viewer, sort):
    facilitator = make_user(is_facilitator=True)
    same_moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for n in range(60):
        # Ties on the sort keys: the id decides, so no row is skipped or shown twice.
        make_incident(
            facilitator=facilitator,
            title=f"Incident {n:03}",
            severity=1 + n % 4,
            created_at=same_moment if n % 3 else datetime(2024, 1, 1 + n % 28, tzinfo=UTC),
        )
    expected = [i.title for i in Incident.objects.order_by(*IncidentFilterForm.SORTS[sort])]

    forward = _walk(client, {"sort": sort})
    last = client.get(LIST_URL, {"sort": sort})
    while (link := _link(last, "next")) is not None:
        last = client.get(f"{LIST_URL}?{link}")
    backward = _walk(client, {}, rel="prev", start=_query(last))

    assert [len(page) for page in forward] == [25, 25, 10]
    assert [title for page in forward for title in page] == expected
    assert [title for page in reversed(backward) for title in page] == expected
    assert backward[-1] == expected[:25]


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00,5",  # no time zone
        "2024-01-01T00:00:00Z,abc",
        "2024-01-01T00:00:00Z,99999999999999999999999",
        "0001-01-01T00:00:00Z,1",
        "9999-12-31T23:59:59+14:00,1",
        "2024-01-01T00:00:00Z,1,2",
        ",",
        "\x00",
    ],
)
@pytest.mark.parametrize("direction", ["after", "before"])
def test_a_malformed_cursor_shows_the_first_page(client, viewer, cursor, direction):
    make_incident(title="Still listed")

    response = client.get(LIST_URL, {direction: cursor})

    assert response.status_code == 200
    assert listed(response) == ["Still listed"]


def test_a_cursor_past_the_end_says_so_and_links_back(client, viewer):
    make_incident(title="Only one", created_at=datetime(2024, 1, 2, tzinfo=UTC))

    response = client.get(LIST_URL, {"after": "2024-01-01T00:00:00.000000Z,1"})

    body = response.content.decode()
    assert listed(response) == []
    assert "No more incidents" in body
    assert 'href="?"' in body


def test_old_page_numbers_show_the_first_page(client, viewer):
    _make_many(30)

    response = client.get(LIST_URL, {"page": "2"})

    assert listed(response)[0] == "Incident 029"


def test_the_count_stops_at_a_limit_and_counts_all_on_request(client, viewer, monkeypatch):
    monkeypatch.setattr(incident_views, "COUNT_LIMIT", 3)
    monkeypatch.setattr(incident_views, "PER_PAGE", 2)
    _make_many(5)

    capped = client.get(LIST_URL, {"q": "Incident"}).content.decode()
    exact = client.get(LIST_URL, {"q": "Incident", "count": "all"}).content.decode()
    one = client.get(LIST_URL, {"q": "Incident 001"}).content.decode()

    assert "More than 3 incidents match these filters." in capped
    assert 'href="?q=Incident&amp;count=all#incident-count">Count them all</a>' in capped
    assert "5 incidents match these filters." in exact and "Count them all" not in exact
    # The exact count is not carried to the other pages.
    assert "count=all" not in exact.split('id="incident-count"')[1]
    assert "1 incident matches these filters." in one


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
        assert response.context["count"] == 0


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


def test_a_deep_page_issues_the_same_queries_as_the_first(client, django_assert_num_queries):
    client.force_login(make_user())
    _make_many(80)
    first = client.get(LIST_URL)
    on_first = _count_queries(client, {})
    link = _link(first, "next")
    while (following := _link(client.get(f"{LIST_URL}?{link}"), "next")) is not None:
        link = following

    with django_assert_num_queries(on_first):
        deep = client.get(f"{LIST_URL}?{link}")
    with django_assert_num_queries(on_first):
        back = client.get(f"{LIST_URL}?{_link(deep, 'prev')}")

    assert listed(deep) == [f"Incident {n:03}" for n in range(4, -1, -1)]
    assert len(listed(back)) == 25


# --- PostgreSQL: the search uses its index ------------------------------------------------------


def search_plans(client, words: str, column: str):
    """The list searched for `words`, and the plans of its queries that read `column`, with
    sequential scans off: with a few hundred rows a scan is cheaper than any index, and the
    planner is to show its index plan."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE postmortems_incident")
        cursor.execute("SET enable_seqscan = off")
    try:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST_URL, {"q": words})
        plans = []
        with connection.cursor() as cursor:
            for query in queries.captured_queries:
                if column in query["sql"]:
                    cursor.execute("EXPLAIN " + query["sql"])
                    plans.append("\n".join(row[0] for row in cursor.fetchall()))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
    return response, plans


def test_a_word_search_reads_the_full_text_index_not_the_table(client, viewer):
    needs(connection.vendor == "postgresql", "full-text search is PostgreSQL's")
    facilitator = make_user(is_facilitator=True)
    for n in range(300):
        make_incident(
            facilitator=facilitator, title=f"Queue backlog {n}", summary="Slow consumers."
        )
    make_incident(facilitator=facilitator, title="Certificates expired on the gateway")

    response, plans = search_plans(client, "certificate", "search_document")

    # Stemmed: "certificate" finds "Certificates".
    assert listed(response) == ["Certificates expired on the gateway"]
    assert len(plans) == 2  # the page and its count
    for plan in plans:
        assert "Seq Scan on postmortems_incident" not in plan
    assert any("Bitmap Index Scan on incident_search" in plan for plan in plans), plans


def test_search_matches_words_in_the_summary_too(client, viewer):
    make_incident(title="Checkout slow", summary="The replica fell behind after a deploy.")
    make_incident(title="Other", summary="Nothing to see.")

    assert listed(client.get(LIST_URL, {"q": "replica"})) == ["Checkout slow"]


# --- Search reads shared timelines, never drafts ----------------------------------------------


def _search(client, words: str) -> list[str]:
    return listed(client.get(LIST_URL, {"q": words}))


def test_search_finds_words_of_shared_entries_and_follows_every_change(client):
    from tests.factories import make_entry

    incident = make_incident(title="Checkout slow")
    make_incident(title="Unrelated")
    author = make_user(time_zone="UTC")
    draft = make_entry(incident=incident, author=author, shared=False, action="Flushed memcached")
    client.force_login(author)
    # A draft is the author's alone: its words find nothing, not even for its author.
    assert _search(client, "memcached") == []

    client.post(reverse("postmortems:entry_share", args=[draft.pk]))
    assert _search(client, "memcached") == ["Checkout slow"]

    prefix = f"entry-{draft.pk}-"
    client.post(
        reverse("postmortems:entry_edit", args=[draft.pk]),
        {
            prefix + "occurred_at": draft.occurred_at.strftime("%Y-%m-%dT%H:%M"),
            prefix + "action": "Restarted haproxy",
            prefix + "kind": draft.kind,
            prefix + "basis": draft.basis,
            prefix + "version": "1",
        },
    )
    assert _search(client, "memcached") == []
    assert _search(client, "haproxy") == ["Checkout slow"]

    client.post(reverse("postmortems:entry_delete", args=[draft.pk]))
    assert _search(client, "haproxy") == []


def test_search_by_timeline_words_keeps_restricted_incidents_hidden(client):
    from tests.factories import make_entry

    hidden = make_incident(title="Secret", visibility=Incident.Visibility.RESTRICTED)
    make_entry(incident=hidden, action="Rotated the zookeeper keys")
    insider = make_user()
    make_participant(incident=hidden, user=insider)

    client.force_login(make_user())
    assert _search(client, "zookeeper") == []
    client.force_login(insider)
    assert _search(client, "zookeeper") == ["Secret"]


def test_a_timeline_word_search_reads_its_index_not_the_entries(client, viewer):
    needs(connection.vendor == "postgresql", "full-text search is PostgreSQL's")
    from tests.factories import make_entry

    for n in range(50):
        make_entry(incident=make_incident(title=f"Queue backlog {n}"), action="Slow consumers")
    make_entry(incident=make_incident(title="Gateway"), observation="Certificates expired")

    response, plans = search_plans(client, "certificate", "timeline_document")

    assert listed(response) == ["Gateway"]
    assert len(plans) == 2  # the page and its count
    for plan in plans:
        assert "postmortems_timelineentry" not in plan
        assert "Seq Scan on postmortems_incident" not in plan
    assert any("Bitmap Index Scan on incident_timeline_search" in plan for plan in plans), plans
