"""The incident page keeps its rendered timeline (timeline.merged_timeline_html) and shows every
change at once: an edit, a share, a delete, a key moment, a question, a renamed author. Driven
through the pages and endpoints people use, so a change path that forgot to show itself fails."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from postmortems import timeline
from postmortems.models import TimelineEntry
from tests.conftest import TemplateRenders
from tests.factories import make_entry, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def timeline_part(response) -> str:
    """The page's timeline section, from its heading to the end of the page's main."""
    assert response.status_code == 200
    body = response.content.decode()
    return body[body.index('id="timeline-heading"') : body.index("</main>")]


@pytest.fixture
def entry():
    return make_entry(
        occurred_at=datetime(2026, 3, 4, 9, 30, tzinfo=UTC),
        action="Restarted the cache",
        author=make_user(time_zone="UTC", display_name="Ada Author"),
    )


@pytest.fixture
def reader(entry):
    user = make_user(time_zone="UTC")
    make_participant(incident=entry.incident, user=user)
    return user


def test_the_same_timeline_seen_again_is_not_rendered_again_and_is_the_same(entry, reader):
    client = signed_in(reader)
    page = entry.incident.get_absolute_url()

    with TemplateRenders(timeline.MERGED_TEMPLATE) as first:
        before = timeline_part(client.get(page))
    with TemplateRenders(timeline.MERGED_TEMPLATE) as second:
        after = timeline_part(client.get(page))

    assert (first.count, second.count) == (1, 0)
    assert after == before
    assert "Restarted the cache" in after


def test_an_edit_by_the_author_shows_at_once(entry, reader):
    page = entry.incident.get_absolute_url()
    reader_client = signed_in(reader)
    reader_client.get(page)

    prefix = f"entry-{entry.pk}-"
    response = signed_in(entry.author).post(
        reverse("postmortems:entry_edit", args=[entry.pk]),
        {
            prefix + "occurred_at": "2026-03-04T09:30",
            prefix + "action": "Restarted the cache, then the proxy",
            prefix + "kind": entry.kind,
            prefix + "basis": entry.basis,
            prefix + "version": str(entry.version),
        },
    )
    assert response.status_code == 302
    assert TimelineEntry.objects.get(pk=entry.pk).version == 2

    assert "Restarted the cache, then the proxy" in timeline_part(reader_client.get(page))


def test_a_newly_shared_entry_and_a_deleted_one_show_at_once(entry, reader):
    author = entry.author
    draft = make_entry(incident=entry.incident, author=author, shared=False, action="Paged Bo")
    page = entry.incident.get_absolute_url()
    reader_client = signed_in(reader)
    assert "Paged Bo" not in timeline_part(reader_client.get(page))

    author_client = signed_in(author)
    assert author_client.post(reverse("postmortems:entry_share", args=[draft.pk])).status_code
    assert "Paged Bo" in timeline_part(reader_client.get(page))

    author_client.post(reverse("postmortems:entry_delete", args=[draft.pk]))
    assert not TimelineEntry.objects.filter(pk=draft.pk).exists()
    assert "Paged Bo" not in timeline_part(reader_client.get(page))


def test_a_key_moment_and_a_question_from_the_facilitator_show_at_once(entry, reader):
    facilitator = entry.incident.created_by
    page = entry.incident.get_absolute_url()
    reader_client = signed_in(reader)
    reader_client.get(page)

    facilitator_client = signed_in(facilitator)
    facilitator_client.post(
        reverse("postmortems:entry_annotate", args=[entry.pk]), {"key_moment": "detected"}
    )
    facilitator_client.post(
        reverse("postmortems:entry_question_add", args=[entry.pk]),
        {"text": "What did the dashboard show then?"},
    )

    html = timeline_part(reader_client.get(page))
    assert "Key moment: Detected" in html
    assert "What did the dashboard show then?" in html


def test_a_renamed_author_shows_at_once(entry, reader):
    page = entry.incident.get_absolute_url()
    reader_client = signed_in(reader)
    assert "Ada Author" in timeline_part(reader_client.get(page))

    entry.author.display_name = "Ada Lovelace"
    entry.author.save()

    html = timeline_part(reader_client.get(page))
    assert "Ada Lovelace" in html and "Ada Author" not in html


def test_the_authors_own_timeline_with_edit_links_is_never_shown_to_another(entry, reader):
    page = entry.incident.get_absolute_url()
    edit_url = reverse("postmortems:entry_edit", args=[entry.pk])

    assert edit_url in timeline_part(signed_in(entry.author).get(page))
    assert edit_url not in timeline_part(signed_in(reader).get(page))


def test_each_viewer_has_their_zone_and_their_filters(entry, reader):
    page = entry.incident.get_absolute_url()
    tokyo = make_user(time_zone="Asia/Tokyo")
    make_participant(incident=entry.incident, user=tokyo)
    other = make_entry(incident=entry.incident, action="Checked the graphs")

    assert ">09:30</time>" in timeline_part(signed_in(reader).get(page))
    assert ">18:30</time>" in timeline_part(signed_in(tokyo).get(page))
    only_other = timeline_part(signed_in(reader).get(page, {"person": other.author_id}))
    assert "Checked the graphs" in only_other and "Restarted the cache" not in only_other


def test_only_so_many_timelines_are_kept(monkeypatch, reader):
    monkeypatch.setattr(timeline, "TIMELINES_KEPT", 2)
    client = signed_in(reader)
    for _ in range(3):
        incident = make_incident()
        make_entry(incident=incident)
        client.get(incident.get_absolute_url())

    assert len(timeline._timelines) == 2
