"""The postmortem page and its contributing factors."""

import pytest
from django.urls import NoReverseMatch, reverse

from postmortems.models import ContributingFactor, Postmortem, TimelineEntry
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_postmortem,
    make_review_meeting,
    make_user,
)


def detail_url(incident) -> str:
    return reverse("postmortems:postmortem_detail", args=[incident.pk])


@pytest.fixture
def facilitator():
    return make_user(is_facilitator=True)


@pytest.fixture
def incident(facilitator):
    return make_incident(facilitator=facilitator)


@pytest.mark.django_db
def test_an_editor_sees_a_start_button_when_there_is_no_write_up(client, incident, facilitator):
    client.force_login(facilitator)

    html = client.get(detail_url(incident)).content.decode()

    assert "Start the postmortem" in html
    assert reverse("postmortems:postmortem_start", args=[incident.pk]) in html


@pytest.mark.django_db
def test_other_people_see_an_empty_state_when_there_is_no_write_up(client, incident):
    client.force_login(make_user())

    html = client.get(detail_url(incident)).content.decode()

    assert "Start the postmortem" not in html
    assert "No write-up yet" in html


@pytest.mark.django_db
def test_the_page_renders_markdown_sanitised(client, incident):
    make_postmortem(
        incident=incident,
        status=Postmortem.Status.PUBLISHED,
        summary="**Bold** <script>alert(1)</script> [x](javascript:alert(1))",
    )
    client.force_login(make_user())

    html = client.get(detail_url(incident)).content.decode()

    assert "<strong>Bold</strong>" in html
    assert "alert(1)</script>" not in html
    assert "javascript:" not in html


@pytest.mark.django_db
def test_factors_link_to_their_shared_entries_on_the_incident_page(client, incident, facilitator):
    postmortem = make_postmortem(incident=incident)
    shared = make_entry(incident=incident, action="Paged the database team")
    draft = make_entry(incident=incident, action="DRAFT-ONLY-WORDS", shared=False)
    factor = make_factor(postmortem=postmortem, description="Replica lag was *invisible*")
    factor.entries.add(shared, draft)
    client.force_login(facilitator)

    html = client.get(detail_url(incident)).content.decode()

    assert "<em>invisible</em>" in html
    assert f"#entry-{shared.pk}" in html
    assert "Paged the database team" in html
    # A draft is its author's alone, even when it ended up linked.
    assert "DRAFT-ONLY-WORDS" not in html
    assert f"#entry-{draft.pk}" not in html


@pytest.mark.django_db
def test_the_page_shows_the_meeting_with_its_calendar_link(client, incident):
    attendee = make_user(display_name="Ana Attendee")
    make_review_meeting(incident=incident, attendees=[attendee], location="Room 4")
    client.force_login(make_user())

    html = client.get(detail_url(incident)).content.decode()

    assert "Room 4" in html
    assert "Ana Attendee" in html
    assert reverse("postmortems:meeting_ics", args=[incident.pk]) in html


@pytest.mark.django_db
def test_the_action_item_link_appears_only_when_that_page_exists(client, incident, facilitator):
    client.force_login(facilitator)

    html = client.get(detail_url(incident)).content.decode()

    try:
        url = reverse("postmortems:action_item_create", args=[incident.pk])
    except NoReverseMatch:
        assert "New action item" not in html
    else:
        assert url in html


def fill(incident, postmortem, count: int) -> None:
    for n in range(count):
        entry = make_entry(incident=incident, action=f"Step {n}")
        factor = make_factor(postmortem=postmortem, description=f"Factor {n}")
        factor.entries.add(entry)
        make_action_item(incident=incident, title=f"Item {n}")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["facilitator", "reader"])
def test_the_page_needs_the_same_number_of_queries_for_1_and_50_factors_and_items(
    client, incident, facilitator, role, django_assert_max_num_queries
):
    postmortem = make_postmortem(incident=incident, status=Postmortem.Status.PUBLISHED)
    make_review_meeting(incident=incident, attendees=[facilitator, make_user()])
    fill(incident, postmortem, 1)
    client.force_login(facilitator if role == "facilitator" else make_user())
    url = detail_url(incident)
    client.get(url)  # warm up caches that are not about the rows (content types, sessions)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        response = client.get(url)
    assert response.status_code == 200
    fill(incident, postmortem, 49)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('class="factor"') == 50


@pytest.mark.django_db
def test_adding_a_factor_links_it_to_the_chosen_shared_entries(client, incident, facilitator):
    postmortem = make_postmortem(incident=incident)
    entry = make_entry(incident=incident)
    client.force_login(facilitator)

    response = client.post(
        reverse("postmortems:factor_create", args=[incident.pk]),
        {"category": "knowledge", "description": "Few knew the failover", "entries": [entry.pk]},
    )

    assert response.status_code == 302
    factor = postmortem.factors.get()
    assert factor.category == ContributingFactor.Category.KNOWLEDGE
    assert list(factor.entries.all()) == [entry]


@pytest.mark.django_db
def test_the_factor_form_offers_shared_entries_of_this_incident_only(client, incident, facilitator):
    make_postmortem(incident=incident)
    mine = make_entry(incident=incident, action="SHARED-HERE")
    make_entry(incident=incident, action="DRAFT-HERE", shared=False)
    elsewhere = make_entry(action="OTHER-INCIDENT")
    client.force_login(facilitator)
    url = reverse("postmortems:factor_create", args=[incident.pk])

    html = client.get(url).content.decode()
    response = client.post(
        url, {"category": "process", "description": "x", "entries": [mine.pk, elsewhere.pk]}
    )

    assert "SHARED-HERE" in html
    assert "DRAFT-HERE" not in html and "OTHER-INCIDENT" not in html
    assert response.status_code == 400
    assert not ContributingFactor.objects.exists()


@pytest.mark.django_db
def test_a_draft_entry_cannot_be_linked_by_posting_its_id(client, incident, facilitator):
    make_postmortem(incident=incident)
    draft = make_entry(incident=incident, shared=False)
    client.force_login(facilitator)

    response = client.post(
        reverse("postmortems:factor_create", args=[incident.pk]),
        {"category": "process", "description": "x", "entries": [draft.pk]},
    )

    assert response.status_code == 400
    assert not ContributingFactor.objects.exists()


@pytest.mark.django_db
def test_a_factor_without_a_description_is_re_shown_with_an_error(client, incident, facilitator):
    make_postmortem(incident=incident)
    client.force_login(facilitator)

    response = client.post(
        reverse("postmortems:factor_create", args=[incident.pk]),
        {"category": "process", "description": ""},
    )

    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


@pytest.mark.django_db
def test_editing_and_removing_a_factor(client, incident, facilitator):
    postmortem = make_postmortem(incident=incident)
    factor = make_factor(postmortem=postmortem)
    client.force_login(facilitator)

    client.post(
        reverse("postmortems:factor_edit", args=[factor.pk]),
        {"category": "external", "description": "The provider's outage"},
    )
    factor.refresh_from_db()
    assert factor.description == "The provider's outage"
    confirm = client.get(reverse("postmortems:factor_delete", args=[factor.pk]))
    assert confirm.status_code == 200
    client.post(reverse("postmortems:factor_delete", args=[factor.pk]))

    assert not ContributingFactor.objects.exists()


@pytest.mark.django_db
def test_factors_of_a_published_write_up_cannot_change(client, incident, facilitator):
    postmortem = make_postmortem(incident=incident, status=Postmortem.Status.PUBLISHED)
    factor = make_factor(postmortem=postmortem, description="Kept")
    client.force_login(facilitator)

    client.post(
        reverse("postmortems:factor_edit", args=[factor.pk]),
        {"category": "external", "description": "Changed"},
    )
    client.post(reverse("postmortems:factor_delete", args=[factor.pk]))
    client.post(
        reverse("postmortems:factor_create", args=[incident.pk]),
        {"category": "external", "description": "New"},
    )

    assert list(ContributingFactor.objects.values_list("description", flat=True)) == ["Kept"]
    assert TimelineEntry.objects.count() == 0
