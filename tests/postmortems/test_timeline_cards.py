"""Entry cards rendered once and remembered (timeline.render_cards): never stale, never shared
between people who should see different cards, and cheap the second time."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse

from postmortems import fragments, timeline
from postmortems.models import ReviewQuestion, TimelineEntry
from tests.conftest import TemplateRenders
from tests.factories import make_entry, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def timeline_html(user, incident, **params) -> str:
    request = RequestFactory().get(f"/incidents/{incident.pk}/", params)
    request.user = user
    context = timeline.merged_timeline_context(request, incident)
    return render_to_string("postmortems/includes/merged_timeline.html", context, request=request)


def test_a_timeline_seen_again_renders_no_card_and_is_the_same_page():
    incident = make_incident()
    for minute in range(5):
        make_entry(incident=incident, occurred_at=datetime(2026, 3, 4, 9, minute, tzinfo=UTC))
    viewer = make_user()

    with TemplateRenders(timeline.CARD_TEMPLATE) as first:
        before = timeline_html(viewer, incident)
    with TemplateRenders(timeline.CARD_TEMPLATE) as second:
        after = timeline_html(viewer, incident)

    assert first.count == 5
    assert second.count == 0
    assert after == before


@pytest.mark.parametrize(
    "change",
    [
        {"action": "New words"},
        {"key_moment": "mitigated"},
        {"occurred_at": datetime(2026, 3, 4, 10, 45, tzinfo=UTC)},
        {"is_approximate": True},
        {"evidence_url": "https://logs.example.com/changed"},
        {"kind": "decision"},
        {"version": 2},
    ],
)
def test_a_changed_entry_is_rendered_again_never_served_stale(change):
    entry = make_entry(occurred_at=datetime(2026, 3, 4, 9, 30, tzinfo=UTC), action="Old words")
    viewer = make_user()
    timeline_html(viewer, entry.incident)

    TimelineEntry.objects.filter(pk=entry.pk).update(**change)
    html = timeline_html(viewer, entry.incident)

    expected = {
        "action": "New words",
        "key_moment": "Key moment: Mitigated",
        "occurred_at": ">10:45</time>",
        "is_approximate": "approximately",
        "evidence_url": "https://logs.example.com/changed",
        "kind": "kind-badge--decision",
        "version": "Edited · v2",
    }[next(iter(change))]
    assert expected in html


def test_a_new_question_and_a_renamed_author_show_at_once():
    entry = make_entry()
    facilitator = entry.incident.created_by
    timeline_html(facilitator, entry.incident)

    ReviewQuestion.objects.create(entry=entry, asked_by=facilitator, text="Why then?")
    entry.author.display_name = "Renamed Person"
    entry.author.save()
    html = timeline_html(facilitator, entry.incident)

    assert "Why then?" in html and "Renamed Person" in html


def test_the_authors_card_with_its_edit_links_is_not_shown_to_anyone_else():
    entry = make_entry()
    edit_url = reverse("postmortems:entry_edit", args=[entry.pk])

    assert edit_url in timeline_html(entry.author, entry.incident)
    assert edit_url not in timeline_html(make_user(), entry.incident)


def test_each_viewer_sees_the_times_in_their_own_zone():
    entry = make_entry(occurred_at=datetime(2026, 3, 4, 9, 30, tzinfo=UTC))

    assert ">09:30</time>" in timeline_html(make_user(time_zone="UTC"), entry.incident)
    assert ">18:30</time>" in timeline_html(make_user(time_zone="Asia/Tokyo"), entry.incident)


def test_only_so_many_cards_are_kept(monkeypatch):
    monkeypatch.setattr(timeline, "RENDERED_CARDS_KEPT", 3)
    incident = make_incident()
    for _ in range(5):
        make_entry(incident=incident)

    timeline_html(make_user(), incident)

    assert len(timeline._rendered) <= 3


def test_a_kept_draft_card_carries_each_requests_own_csrf_token_and_its_share_works():
    """The draft's card is kept with a stand-in for the token: two sessions of its author each
    find their own token in it (never the stand-in, never the other's), and it works."""
    author = make_user()
    incident = make_incident()
    make_participant(incident=incident, user=author)
    draft = make_entry(incident=incident, author=author, shared=False, action="My draft")
    url = reverse("postmortems:my_account", args=[incident.pk])
    share_url = reverse("postmortems:entry_share", args=[draft.pk])

    def share_form_token(client) -> str:
        body = client.get(url).content.decode()
        assert fragments.CSRF_SLOT not in body
        form = body[body.index(f'action="{share_url}"') :]
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)

    laptop, phone = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    laptop.force_login(author)
    phone.force_login(author)
    share_form_token(laptop)  # the card is kept now
    with TemplateRenders(timeline.CARD_TEMPLATE) as renders:
        laptop_token, phone_token = share_form_token(laptop), share_form_token(phone)
    assert renders.count == 0  # both from the kept card
    assert laptop_token != phone_token

    refused = laptop.post(share_url, {"csrfmiddlewaretoken": "x" * 64})
    response = phone.post(share_url, {"csrfmiddlewaretoken": phone_token})

    assert refused.status_code == 403
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_shared
