"""The merged timeline: shared entries of everyone, woven together, with its views."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from postmortems.models import Incident, ReviewQuestion, TimelineEntry
from postmortems.timeline import cluster, merged_timeline_context, perspective_rows
from tests.factories import make_entry, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def at(hour, minute=0, day=4):
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def render_timeline(user, incident, **params):
    request = RequestFactory().get(f"/incidents/{incident.pk}/", params)
    request.user = user
    context = merged_timeline_context(request, incident)
    html = render_to_string("postmortems/includes/merged_timeline.html", context, request=request)
    return context["timeline"], html


def shown(timeline):
    return [entry for day in timeline.days for row in day.rows for entry in row.entries]


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def incident():
    return make_incident()


def test_only_shared_entries_appear_never_drafts_not_even_the_viewers_own(incident):
    viewer = make_user()
    make_entry(incident=incident, author=viewer, shared=False, action="Viewer's draft")
    make_entry(incident=incident, shared=False, action="Colleague's draft")
    shared = make_entry(incident=incident, author=viewer, action="Shared words")

    timeline, html = render_timeline(viewer, incident)

    assert shown(timeline) == [shared]
    assert "Shared words" in html
    assert "draft" not in html.lower().replace("drafts", "")


def test_entries_of_everyone_are_in_time_order(incident):
    alice, bob = make_user(display_name="Alice"), make_user(display_name="Bob")
    third = make_entry(incident=incident, author=alice, occurred_at=at(10, 30))
    first = make_entry(incident=incident, author=bob, occurred_at=at(9, 0))
    second = make_entry(incident=incident, author=alice, occurred_at=at(10, 0))

    timeline, html = render_timeline(make_user(), incident)

    assert shown(timeline) == [first, second, third]
    assert html.index("09:00") < html.index("10:00") < html.index("10:30")


def test_an_entry_made_in_kolkata_shows_on_the_previous_day_in_new_york(client, incident):
    author = make_user(time_zone="Asia/Kolkata", display_name="Amita")
    make_participant(incident=incident, user=author)
    client.force_login(author)
    client.post(
        reverse("postmortems:my_account", args=[incident.pk]),
        {
            "occurred_at": "2026-03-04T10:00",
            "action": "Paged the database team.",
            "kind": "action",
            "basis": "observed",
            "intent": "share",
        },
    )
    entry = TimelineEntry.objects.get()
    assert entry.occurred_at == at(4, 30)
    viewer = make_user(time_zone="America/New_York")

    timeline, html = render_timeline(viewer, incident)

    assert [day.date.isoformat() for day in timeline.days] == ["2026-03-03"]
    assert "Tuesday 3 March 2026" in html
    assert ">23:30</time>" in html
    assert 'title="Entered as 4 Mar 2026, 10:00 in Asia/Kolkata"' in html
    assert "your time (entered as 4 Mar 2026, 10:00 in Asia/Kolkata)" in html


def test_entries_are_grouped_by_day_in_the_viewers_zone(incident):
    make_entry(incident=incident, occurred_at=at(23, 30, day=3))
    make_entry(incident=incident, occurred_at=at(0, 30, day=4))

    in_utc, _ = render_timeline(make_user(time_zone="UTC"), incident)
    in_tokyo, _ = render_timeline(make_user(time_zone="Asia/Tokyo"), incident)

    assert len(in_utc.days) == 2
    assert len(in_tokyo.days) == 1


def test_approximate_times_are_marked(incident):
    make_entry(incident=incident, is_approximate=True, occurred_at=at(10, 0))

    _, html = render_timeline(make_user(), incident)

    assert "≈" in html and "approximately" in html


def test_each_author_has_a_stable_mark_and_a_name_label(incident):
    alice, bob = make_user(display_name="Alice"), make_user(display_name="Bob")
    make_entry(incident=incident, author=alice, occurred_at=at(9))
    make_entry(incident=incident, author=bob, occurred_at=at(10))
    make_entry(incident=incident, author=alice, occurred_at=at(11))

    _, html = render_timeline(make_user(), incident)

    assert html.count(f"author-chip--{alice.pk % 8}") == 2
    assert f"author-chip--{bob.pk % 8}" in html
    assert html.count(">Alice</span>") == 2 and ">Bob</span>" in html


def test_words_are_escaped_and_evidence_links_are_safe(incident):
    make_entry(
        incident=incident,
        action="<img src=x onerror=alert(1)>",
        evidence_url="https://grafana.example.com/d/abc",
    )

    _, html = render_timeline(make_user(), incident)

    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_filter_by_person_and_kind(incident):
    alice, bob = make_user(display_name="Alice"), make_user(display_name="Bob")
    alices_action = make_entry(incident=incident, author=alice, kind="action")
    alices_decision = make_entry(incident=incident, author=alice, kind="decision")
    make_entry(incident=incident, author=bob, kind="decision")
    viewer = make_user()

    by_alice, html = render_timeline(viewer, incident, person=str(alice.pk))
    alices_decisions, _ = render_timeline(viewer, incident, person=str(alice.pk), kind="decision")

    assert set(shown(by_alice)) == {alices_action, alices_decision}
    assert shown(alices_decisions) == [alices_decision]
    assert 'method="get"' in html and "Apply" in html


@pytest.mark.parametrize(
    "params",
    [
        {"person": "abc"},
        {"person": "999999"},
        {"kind": "blame"},
        {"view": "sideways"},
        {"window": "7"},
        {"window": "-1"},
        {"as_of": "not a date"},
        {"as_of": "0001-01-01T00:00"},
        {"as_of": "9999-12-31T23:59"},
    ],
)
def test_malformed_filters_are_ignored_never_a_crash(incident, params):
    entry = make_entry(incident=incident, occurred_at=at(10))

    timeline, html = render_timeline(make_user(time_zone="America/New_York"), incident, **params)

    assert shown(timeline) == [entry]
    assert timeline.form.errors or params.get("person") == "999999"


def test_an_invalid_filter_is_reported_on_the_filter_form(incident):
    make_entry(incident=incident)

    _, html = render_timeline(make_user(), incident, kind="blame")

    assert "Some filters couldn&#x27;t be used" in html or "Some filters couldn't be used" in html


# --- Perspectives ---


def test_cluster_sweeps_entries_within_the_window_of_the_previous_one():
    alice, bob = make_user(), make_user()
    incident = make_incident()
    a = make_entry(incident=incident, author=alice, occurred_at=at(10, 0))
    b = make_entry(incident=incident, author=bob, occurred_at=at(10, 4))
    c = make_entry(incident=incident, author=alice, occurred_at=at(10, 8))
    d = make_entry(incident=incident, author=bob, occurred_at=at(10, 20))

    clusters = cluster([a, b, c, d], timedelta(minutes=5))

    assert clusters == [[a, b, c], [d]]


def test_only_clusters_with_different_authors_are_shown_side_by_side():
    alice, bob = make_user(), make_user()
    incident = make_incident()
    a1 = make_entry(incident=incident, author=alice, occurred_at=at(9, 0))
    a2 = make_entry(incident=incident, author=alice, occurred_at=at(9, 2))
    a3 = make_entry(incident=incident, author=alice, occurred_at=at(10, 0))
    b1 = make_entry(incident=incident, author=bob, occurred_at=at(10, 3))

    rows = perspective_rows([a1, a2, a3, b1], timedelta(minutes=5))

    assert [row.is_perspective for row in rows] == [False, False, True]
    side_by_side = rows[2]
    assert [column.author for column in side_by_side.columns] == [alice, bob]
    assert [column.entries for column in side_by_side.columns] == [[a3], [b1]]


def test_the_perspectives_view_puts_close_accounts_side_by_side(incident):
    alice, bob = make_user(display_name="Alice"), make_user(display_name="Bob")
    make_entry(incident=incident, author=alice, occurred_at=at(10, 0), action="Restarted it")
    make_entry(incident=incident, author=bob, occurred_at=at(10, 4), observation="Saw it flap")
    make_entry(incident=incident, author=bob, occurred_at=at(11, 0), action="Later on")

    timeline, html = render_timeline(make_user(), incident, view="perspectives")

    assert timeline.is_perspectives and timeline.perspective_count == 1
    assert html.count('class="perspective"') == 1
    assert html.count('class="perspective__column"') == 2
    assert "10:00–10:04" in html


def test_the_perspective_window_is_selectable(incident):
    alice, bob = make_user(), make_user()
    make_entry(incident=incident, author=alice, occurred_at=at(10, 0))
    make_entry(incident=incident, author=bob, occurred_at=at(10, 8))

    default, _ = render_timeline(make_user(), incident, view="perspectives")
    wider, _ = render_timeline(make_user(), incident, view="perspectives", window="10")

    assert default.window == 5 and default.perspective_count == 0
    assert wider.window == 10 and wider.perspective_count == 1


# --- As known then ---


def test_as_of_hides_everything_after_the_cut_with_a_banner(incident):
    before = make_entry(incident=incident, occurred_at=at(9, 0), key_moment="detected")
    ReviewQuestion.objects.create(entry=before, asked_by=incident.created_by, text="Asked later")
    make_entry(incident=incident, occurred_at=at(10, 1), action="Learned later")
    make_entry(incident=incident, occurred_at=at(11, 0), action="Learned even later")
    viewer = make_user(time_zone="Europe/Berlin")

    timeline, html = render_timeline(viewer, incident, as_of="2026-03-04T11:00")  # 10:00 UTC

    assert shown(timeline) == [before]
    assert timeline.hidden_count == 2
    assert "Showing only what had happened by 4 Mar 2026, 11:00" in html
    assert "2 later entries are hidden" in html
    assert "Learned later" not in html
    assert "Asked later" not in html and "Key moment" not in html
    assert "Show the whole timeline" in html


def test_without_as_of_questions_and_key_moments_show(incident):
    entry = make_entry(incident=incident, key_moment="mitigated")
    ReviewQuestion.objects.create(
        entry=entry, asked_by=incident.created_by, text="What did the graph show?"
    )

    _, html = render_timeline(make_user(), incident)

    assert "Key moment: Mitigated" in html
    assert "What did the graph show?" in html


def test_facilitators_get_a_way_to_annotate_others_do_not(incident):
    make_entry(incident=incident)

    _, for_facilitator = render_timeline(incident.created_by, incident)
    _, for_others = render_timeline(make_user(), incident)

    assert "Mark or ask" in for_facilitator
    assert "Mark or ask" not in for_others


def test_the_empty_timeline_says_what_will_appear(incident):
    make_entry(incident=incident, shared=False)

    _, html = render_timeline(make_user(), incident)

    assert "Nobody has shared their account yet" in html


# --- A fixed number of queries ---


def _queries_to_render(user, incident, **params):
    incident = Incident.objects.get(pk=incident.pk)  # no permission answers cached from before
    with CaptureQueriesContext(connection) as queries:
        render_timeline(user, incident, **params)
    return len(queries.captured_queries)


@pytest.mark.parametrize(
    "params",
    [{}, {"view": "perspectives"}, {"as_of": "2026-03-04T11:00"}, {"kind": "action"}],
)
def test_the_timeline_costs_the_same_queries_with_1_or_200_entries(incident, params):
    people = [make_user() for _ in range(8)]
    viewer = incident.created_by
    first = make_entry(incident=incident, author=people[0], occurred_at=at(8, 0))
    ReviewQuestion.objects.create(entry=first, asked_by=viewer, text="Q")
    with_one = _queries_to_render(viewer, incident, **params)
    for n in range(199):
        entry = make_entry(
            incident=incident,
            author=people[n % 8],
            occurred_at=at(8, 0) + timedelta(minutes=n * 3),
            kind="action" if n % 2 else "observation",
        )
        ReviewQuestion.objects.create(entry=entry, asked_by=viewer, text=f"Q{n}")

    with_many = _queries_to_render(viewer, incident, **params)

    assert with_many == with_one
    assert with_one <= 5


# --- On the incident page ---


def test_the_incident_page_shows_the_merged_timeline(client, incident):
    make_entry(incident=incident, action="Shared on the page")
    make_entry(incident=incident, shared=False, action="Draft not on the page")
    client.force_login(make_user())

    response = client.get(incident.get_absolute_url() + "?view=perspectives")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Shared on the page" in body
    assert "Draft not on the page" not in body


def test_the_restricted_incidents_timeline_is_not_shown_to_outsiders(client):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    make_entry(incident=incident)
    client.force_login(make_user())

    assert client.get(incident.get_absolute_url()).status_code == 404
