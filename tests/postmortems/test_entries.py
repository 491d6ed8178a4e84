"""First-person accounts: the "my account" page, adding, editing, sharing and deleting entries."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from postmortems.forms.timeline import TEXT_MAX_CHARS
from postmortems.models import Incident, Participant, TimelineEntry, TimelineEntryRevision
from tests.factories import make_entry, make_incident, make_participant, make_team, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
HTMX = {"HTTP_HX_REQUEST": "true"}


def account_url(incident):
    return reverse("postmortems:my_account", args=[incident.pk])


def entry_data(**overrides):
    data = {
        "occurred_at": "2026-03-04T10:00",
        "action": "Rolled back the 09:50 deploy.",
        "observation": "",
        "expectation": "Errors would drop within a minute.",
        "assumption": "",
        "understanding": "",
        "kind": "action",
        "basis": "observed",
        "evidence_url": "",
        "intent": "draft",
    }
    data.update(overrides)
    return data


def edit_data(entry, **overrides):
    prefix = f"entry-{entry.pk}-"
    data = {
        # The author in these tests is in UTC.
        prefix + "occurred_at": entry.occurred_at.strftime("%Y-%m-%dT%H:%M"),
        prefix + "action": entry.action,
        prefix + "observation": entry.observation,
        prefix + "kind": entry.kind,
        prefix + "basis": entry.basis,
        prefix + "version": str(entry.version),
    }
    data.update({prefix + key: value for key, value in overrides.items() if key != "intent"})
    if "intent" in overrides:
        data["intent"] = overrides["intent"]
    return data


@pytest.fixture
def responder():
    return make_user(time_zone="UTC")


@pytest.fixture
def incident(responder):
    incident = make_incident()
    make_participant(incident=incident, user=responder)
    return incident


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


# --- The "my account" page ---


def test_a_participant_sees_their_own_entries_drafts_marked_as_private(client, responder, incident):
    make_entry(incident=incident, author=responder, shared=False, action="My draft words")
    make_entry(incident=incident, author=responder, shared=True, action="My shared words")
    make_entry(incident=incident, shared=True, action="Someone else's words")
    client.force_login(responder)

    response = client.get(account_url(incident))

    assert response.status_code == 200
    body = response.content.decode()
    assert "My draft words" in body and "My shared words" in body
    assert "Someone else" not in body
    assert "Draft — only you can see this" in body
    assert "Write what you knew then, not what you know now" in body


def test_someone_who_can_see_the_incident_but_is_not_in_it_gets_403(client, incident):
    for outsider in (make_user(), make_user(is_superuser=True, is_staff=True)):
        client.force_login(outsider)
        assert client.get(account_url(incident)).status_code == 403
        assert client.post(account_url(incident), entry_data()).status_code == 403
    assert not TimelineEntry.objects.exists()


def test_someone_who_cannot_see_a_restricted_incident_gets_404(client):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    client.force_login(make_user())

    assert client.get(account_url(incident)).status_code == 404
    assert client.post(account_url(incident), entry_data()).status_code == 404
    assert not TimelineEntry.objects.exists()


def test_adding_an_entry_without_javascript_saves_a_draft_and_redirects(
    client, responder, incident
):
    client.force_login(responder)

    response = client.post(account_url(incident), entry_data())

    entry = TimelineEntry.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"#entry-{entry.pk}")
    assert entry.author == responder and entry.incident == incident
    assert entry.state == TimelineEntry.State.DRAFT and entry.shared_at is None
    assert entry.action == "Rolled back the 09:50 deploy."
    assert entry.version == 1


def test_share_now_shares_the_new_entry_at_once(client, responder, incident):
    client.force_login(responder)

    client.post(account_url(incident), entry_data(intent="share"))

    entry = TimelineEntry.objects.get()
    assert entry.is_shared and entry.shared_at == NOW


def test_adding_with_htmx_returns_the_panel_with_the_new_entry_and_a_fresh_form(
    client, responder, incident
):
    client.force_login(responder)

    response = client.post(account_url(incident), entry_data(), **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="account-panel"' in body
    assert "<html" not in body
    assert "Rolled back the 09:50 deploy." in body
    assert "Saved as a draft" in body
    assert "HX-Request" in response["Vary"]


def test_invalid_htmx_add_returns_the_panel_with_errors_and_the_text_kept(
    client, responder, incident
):
    client.force_login(responder)

    response = client.post(
        account_url(incident), entry_data(action="", expectation="kept words"), **HTMX
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Tell us what you did, what you saw, or both." in body
    assert "kept words" in body
    assert not TimelineEntry.objects.exists()


def test_smuggled_author_incident_state_and_version_are_ignored(client, responder, incident):
    other_incident = make_incident()
    someone_else = make_user()
    client.force_login(responder)

    client.post(
        account_url(incident),
        entry_data(
            author=someone_else.pk,
            incident=other_incident.pk,
            state="shared",
            version="99",
            key_moment="resolved",
        ),
    )

    entry = TimelineEntry.objects.get()
    assert entry.author == responder and entry.incident == incident
    assert entry.state == TimelineEntry.State.DRAFT
    assert entry.version == 1 and entry.key_moment == ""


def test_the_time_is_read_in_the_authors_zone_and_the_zone_is_kept(client, incident):
    author = make_user(time_zone="Asia/Kolkata")
    make_participant(incident=incident, user=author)
    client.force_login(author)

    client.post(account_url(incident), entry_data(occurred_at="2026-03-04T10:00"))

    entry = TimelineEntry.objects.get()
    assert entry.occurred_at == datetime(2026, 3, 4, 4, 30, tzinfo=UTC)
    assert entry.occurred_tz == "Asia/Kolkata"


def test_approximately_is_kept(client, responder, incident):
    client.force_login(responder)

    client.post(account_url(incident), entry_data(is_approximate="on"))

    assert TimelineEntry.objects.get().is_approximate


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"action": "", "observation": ""}, "Tell us what you did, what you saw, or both."),
        ({"occurred_at": "2026-03-06T10:00"}, "more than a day in the future"),
        ({"occurred_at": "yesterday-ish"}, "Enter a date and time"),
        ({"occurred_at": "2026-02-30T10:00"}, "Enter a date and time"),
        ({"occurred_at": "0001-01-01T00:00"}, "Check the year"),
        ({"occurred_at": "9999-12-31T23:59"}, "more than a day in the future"),
        ({"occurred_at": ""}, "This field is required"),
        ({"evidence_url": "javascript:alert(1)"}, "starting with http:// or https://"),
        ({"evidence_url": "ftp://logs.example.com/x"}, "starting with http:// or https://"),
        ({"evidence_url": "data:text/html,hi"}, "starting with http:// or https://"),
        ({"action": "a" * 100_000}, "Keep this under 20,000 characters (it has 100,000)"),
        ({"understanding": "b" * (TEXT_MAX_CHARS + 1)}, "Keep this under 20,000 characters"),
        ({"kind": "blame"}, "Select a valid choice"),
        ({"basis": "rumour"}, "Select a valid choice"),
        ({"action": "nul \x00 byte"}, "Null characters are not allowed"),
    ],
)
def test_bad_input_is_reported_on_the_form_and_nothing_is_saved(
    client, responder, incident, overrides, message
):
    client.force_login(responder)

    response = client.post(account_url(incident), entry_data(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not TimelineEntry.objects.exists()


def test_a_time_that_does_not_exist_in_the_authors_zone_is_an_error_not_a_500(client, incident):
    author = make_user(time_zone="Europe/London")
    make_participant(incident=incident, user=author)

    # Clocks went forward at 01:00 on 29 March 2026 in London: 01:30 never happened.
    with time_machine.travel(datetime(2026, 3, 30, tzinfo=UTC), tick=False):
        client.force_login(author)
        response = client.post(account_url(incident), entry_data(occurred_at="2026-03-29T01:30"))

    assert response.status_code == 200
    assert not TimelineEntry.objects.exists()


def test_a_long_text_is_refused_with_every_word_given_back(client, responder, incident):
    client.force_login(responder)
    long_text = "word " * 5000

    response = client.post(account_url(incident), entry_data(observation=long_text))

    assert long_text.strip() in response.content.decode()


def test_html_in_an_entry_is_shown_escaped(client, responder, incident):
    make_entry(
        incident=incident,
        author=responder,
        action="<script>alert('x')</script><b>bold</b>",
    )
    client.force_login(responder)

    body = client.get(account_url(incident)).content.decode()

    assert "<script>alert(" not in body
    assert "&lt;script&gt;alert(" in body
    assert "<b>bold</b>" not in body


def test_evidence_links_open_safely(client, responder, incident):
    make_entry(incident=incident, author=responder, evidence_url="https://logs.example.com/q?a=1")
    client.force_login(responder)

    body = client.get(account_url(incident)).content.decode()

    assert 'href="https://logs.example.com/q?a=1"' in body
    assert 'rel="noopener noreferrer nofollow"' in body


def test_the_page_of_entries_is_paginated(client, responder, incident):
    for minute in range(55):
        make_entry(
            incident=incident,
            author=responder,
            occurred_at=NOW - timedelta(hours=2) + timedelta(minutes=minute),
            action=f"Step {minute:02d}",
        )
    client.force_login(responder)

    first = client.get(account_url(incident)).content.decode()
    second = client.get(account_url(incident) + "?page=2").content.decode()
    bad = client.get(account_url(incident) + "?page=zzz")

    assert "Step 00" in first and "Step 54" not in first
    assert "Step 54" in second and "Step 00" not in second
    assert bad.status_code == 200


def test_my_account_costs_the_same_queries_with_one_or_many_entries(
    client, responder, incident, django_assert_num_queries
):
    make_entry(incident=incident, author=responder)
    client.force_login(responder)
    client.get(account_url(incident))  # warm the session
    with CaptureQueriesContext(connection) as one:
        client.get(account_url(incident))
    for minute in range(30):
        entry = make_entry(
            incident=incident,
            author=responder,
            shared=minute % 2 == 0,
            occurred_at=NOW - timedelta(minutes=minute + 5),
        )
        entry.questions.create(text="What did you see?", asked_by=incident.created_by)

    with django_assert_num_queries(len(one.captured_queries)):
        client.get(account_url(incident))


# --- Editing: the author alone, keeping every earlier word ---


def test_the_author_edits_and_the_previous_words_are_kept_as_a_revision(
    client, responder, incident
):
    entry = make_entry(incident=incident, author=responder, action="First words")
    client.force_login(responder)

    response = client.post(
        reverse("postmortems:entry_edit", args=[entry.pk]),
        edit_data(entry, action="Second words"),
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.action == "Second words"
    assert entry.version == 2
    revision = entry.revisions.get()
    assert revision.version == 1 and revision.data["action"] == "First words"


def test_each_edit_adds_a_revision_shown_in_the_history(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="One")
    client.force_login(responder)
    url = reverse("postmortems:entry_edit", args=[entry.pk])
    client.post(url, edit_data(entry, action="Two"))
    entry.refresh_from_db()
    client.post(url, edit_data(entry, action="Three"))

    entry.refresh_from_db()
    assert entry.version == 3
    assert [r.data["action"] for r in entry.revisions.all()] == ["Two", "One"]
    body = client.get(entry.get_absolute_url()).content.decode()
    assert "Version 3 (current)" in body and "Version 2" in body and "Version 1" in body
    assert "One" in body and "Two" in body


def test_saving_without_changes_adds_no_revision(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Same")
    client.force_login(responder)

    client.post(reverse("postmortems:entry_edit", args=[entry.pk]), edit_data(entry))

    entry.refresh_from_db()
    assert entry.version == 1 and not entry.revisions.exists()


def test_a_stale_save_is_refused_and_both_texts_are_shown(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Original")
    client.force_login(responder)
    url = reverse("postmortems:entry_edit", args=[entry.pk])
    stale = edit_data(entry, action="Written in tab B")
    client.post(url, edit_data(entry, action="Written in tab A"))

    response = client.post(url, stale)

    assert response.status_code == 200
    body = response.content.decode()
    assert "changed since you opened it" in body
    assert "Written in tab A" in body  # the saved text, beside the form
    assert "Written in tab B" in body  # their own text, still in the form
    assert 'value="2"' in body  # the form now builds on the current version
    entry.refresh_from_db()
    assert entry.action == "Written in tab A" and entry.version == 2
    assert entry.revisions.count() == 1


def test_a_missing_or_garbled_version_is_treated_as_stale(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Original")
    client.force_login(responder)
    data = edit_data(entry, action="Changed")
    data[f"entry-{entry.pk}-version"] = "not-a-number"

    response = client.post(reverse("postmortems:entry_edit", args=[entry.pk]), data)

    assert "changed since you opened it" in response.content.decode()
    entry.refresh_from_db()
    assert entry.action == "Original"


def test_edit_in_place_with_htmx_returns_the_form_then_the_card(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Before")
    client.force_login(responder)
    url = reverse("postmortems:entry_edit", args=[entry.pk])

    form = client.get(url, **HTMX).content.decode()
    card = client.post(url, edit_data(entry, action="After"), **HTMX).content.decode()

    assert f'id="entry-{entry.pk}"' in form and f'hx-post="{url}"' in form
    assert "<html" not in form
    assert f'id="entry-{entry.pk}"' in card and "After" in card and "version 2" in card


def test_the_edit_form_shows_the_time_in_the_authors_zone(client, incident):
    author = make_user(time_zone="Asia/Kolkata")
    entry = make_entry(
        incident=incident, author=author, occurred_at=datetime(2026, 3, 4, 4, 30, tzinfo=UTC)
    )
    client.force_login(author)

    body = client.get(reverse("postmortems:entry_edit", args=[entry.pk])).content.decode()

    assert 'value="2026-03-04T10:00"' in body


def test_save_and_share_shares_a_draft_while_editing(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, shared=False)
    client.force_login(responder)

    client.post(
        reverse("postmortems:entry_edit", args=[entry.pk]),
        edit_data(entry, action="Now ready", intent="share"),
    )

    entry.refresh_from_db()
    assert entry.is_shared and entry.action == "Now ready"


def test_invalid_edit_is_reshown_and_nothing_changes(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Kept")
    client.force_login(responder)

    response = client.post(
        reverse("postmortems:entry_edit", args=[entry.pk]),
        edit_data(entry, action="", observation="", evidence_url="javascript:alert(1)"),
    )

    assert response.status_code == 200
    assert "starting with http:// or https://" in response.content.decode()
    entry.refresh_from_db()
    assert entry.action == "Kept" and entry.version == 1


# --- Only the author: not facilitators, managers or admins ---


@pytest.fixture
def colleagues(incident):
    """Everyone who may see the incident but is not the entry's author."""
    manager = make_user()
    make_team(managers=[manager])
    return {
        "facilitator": incident.created_by,
        "manager": manager,
        "admin": make_user(is_superuser=True, is_staff=True),
        "other participant": make_participant(incident=incident).user,
    }


@pytest.mark.parametrize("who", ["facilitator", "manager", "admin", "other participant"])
def test_nobody_but_the_author_may_edit_share_or_delete(
    client, responder, incident, colleagues, who
):
    entry = make_entry(incident=incident, author=responder, action="My words")
    client.force_login(colleagues[who])

    responses = [
        client.get(reverse("postmortems:entry_edit", args=[entry.pk])),
        client.post(
            reverse("postmortems:entry_edit", args=[entry.pk]),
            edit_data(entry, action="Rewritten"),
        ),
        client.get(reverse("postmortems:entry_delete", args=[entry.pk])),
        client.post(reverse("postmortems:entry_delete", args=[entry.pk])),
        client.post(reverse("postmortems:entry_share", args=[entry.pk])),
    ]

    assert [r.status_code for r in responses] == [403] * 5
    entry.refresh_from_db()
    assert entry.action == "My words" and entry.version == 1
    assert not TimelineEntryRevision.objects.exists()


@pytest.mark.parametrize("who", ["facilitator", "manager", "admin", "other participant"])
def test_someone_elses_draft_is_invisible_even_to_admins(
    client, responder, incident, colleagues, who
):
    draft = make_entry(incident=incident, author=responder, shared=False, action="Private")
    client.force_login(colleagues[who])

    urls = [
        reverse("postmortems:entry_detail", args=[draft.pk]),
        reverse("postmortems:entry_edit", args=[draft.pk]),
        reverse("postmortems:entry_delete", args=[draft.pk]),
    ]

    assert [client.get(url).status_code for url in urls] == [404] * 3
    assert client.post(reverse("postmortems:entry_share", args=[draft.pk])).status_code == 404
    assert client.post(reverse("postmortems:entry_delete", args=[draft.pk])).status_code == 404
    draft.refresh_from_db()
    assert draft.state == TimelineEntry.State.DRAFT


def test_an_outsider_gets_404_for_entries_of_a_restricted_incident(client):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    entry = make_entry(incident=incident, action="Restricted words")
    client.force_login(make_user())

    for name in ("entry_detail", "entry_edit", "entry_delete"):
        assert client.get(reverse(f"postmortems:{name}", args=[entry.pk])).status_code == 404
    for name in ("entry_share", "entry_delete", "entry_annotate", "entry_question_add"):
        assert client.post(reverse(f"postmortems:{name}", args=[entry.pk])).status_code == 404
    entry.refresh_from_db()
    assert entry.action == "Restricted words" and not entry.questions.exists()


def test_anyone_who_sees_the_incident_sees_a_shared_entry_and_its_history(
    client, responder, incident
):
    entry = make_entry(incident=incident, author=responder, action="Shared words")
    client.force_login(make_user())

    response = client.get(entry.get_absolute_url())

    assert response.status_code == 200
    body = response.content.decode()
    assert "Shared words" in body and "History" in body
    assert reverse("postmortems:entry_edit", args=[entry.pk]) not in body


def test_the_author_sees_their_draft_and_its_language_notes(client, responder, incident):
    draft = make_entry(
        incident=incident, author=responder, shared=False, action="I should have checked."
    )
    client.force_login(responder)

    body = client.get(draft.get_absolute_url()).content.decode()

    assert "Draft — only you can see this" in body
    assert "should have checked" in body and "Notes on phrasing" in body


def test_entry_detail_costs_the_same_queries_with_many_revisions_and_questions(
    client, responder, incident, django_assert_num_queries
):
    entry = make_entry(incident=incident, author=responder)
    client.force_login(responder)
    client.get(entry.get_absolute_url())
    with CaptureQueriesContext(connection) as few:
        client.get(entry.get_absolute_url())
    for version in range(1, 20):
        TimelineEntryRevision.objects.create(entry=entry, version=version, data={"action": "x"})
        entry.questions.create(text=f"Question {version}", asked_by=incident.created_by)

    with django_assert_num_queries(len(few.captured_queries)):
        client.get(entry.get_absolute_url())


# --- Sharing and deleting ---


def test_the_author_shares_one_draft(client, responder, incident):
    draft = make_entry(incident=incident, author=responder, shared=False)
    client.force_login(responder)

    response = client.post(reverse("postmortems:entry_share", args=[draft.pk]))

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_shared and draft.shared_at == NOW


def test_sharing_is_post_only(client, responder, incident):
    draft = make_entry(incident=incident, author=responder, shared=False)
    client.force_login(responder)

    assert client.get(reverse("postmortems:entry_share", args=[draft.pk])).status_code == 405
    assert (
        client.get(reverse("postmortems:account_share_all", args=[incident.pk])).status_code == 405
    )
    draft.refresh_from_db()
    assert draft.state == TimelineEntry.State.DRAFT


def test_share_all_shares_only_the_authors_own_drafts_in_this_incident(client, responder, incident):
    mine = [make_entry(incident=incident, author=responder, shared=False) for _ in range(3)]
    theirs = make_entry(incident=incident, shared=False)
    elsewhere = make_entry(author=responder, shared=False)
    client.force_login(responder)

    response = client.post(reverse("postmortems:account_share_all", args=[incident.pk]))

    assert response.status_code == 302
    assert all(TimelineEntry.objects.get(pk=e.pk).is_shared for e in mine)
    assert not TimelineEntry.objects.get(pk=theirs.pk).is_shared
    assert not TimelineEntry.objects.get(pk=elsewhere.pk).is_shared


def test_share_all_is_refused_to_non_participants(client, incident, responder):
    draft = make_entry(incident=incident, author=responder, shared=False)
    client.force_login(make_user(is_superuser=True, is_staff=True))

    response = client.post(reverse("postmortems:account_share_all", args=[incident.pk]))

    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.state == TimelineEntry.State.DRAFT


def test_delete_asks_first_then_deletes_with_history(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Going")
    TimelineEntryRevision.objects.create(entry=entry, version=1, data={"action": "Went"})
    client.force_login(responder)
    url = reverse("postmortems:entry_delete", args=[entry.pk])

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Delete this entry?" in confirm.content.decode()
    assert TimelineEntry.objects.filter(pk=entry.pk).exists()

    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"] == account_url(incident)
    assert not TimelineEntry.objects.filter(pk=entry.pk).exists()
    assert not TimelineEntryRevision.objects.exists()


def test_an_author_removed_from_the_incident_still_owns_their_words(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Mine")
    Participant.objects.filter(incident=incident, user=responder).delete()
    client.force_login(responder)

    response = client.post(
        reverse("postmortems:entry_edit", args=[entry.pk]), edit_data(entry, action="Still mine")
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.action == "Still mine"
    assert client.get(account_url(incident)).status_code == 403


# --- Key moments and review questions ---


def test_a_facilitator_marks_a_key_moment_without_touching_the_words(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, action="Saw the spike")
    client.force_login(incident.created_by)

    response = client.post(
        reverse("postmortems:entry_annotate", args=[entry.pk]),
        {"key_moment": "detected", "action": "Rewritten by facilitator"},
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.key_moment == "detected"
    assert entry.action == "Saw the spike" and entry.version == 1


def test_a_facilitator_can_clear_a_key_moment(client, responder, incident):
    entry = make_entry(incident=incident, author=responder, key_moment="resolved")
    client.force_login(incident.created_by)

    client.post(reverse("postmortems:entry_annotate", args=[entry.pk]), {"key_moment": ""})

    entry.refresh_from_db()
    assert entry.key_moment == ""


def test_an_unknown_key_moment_is_a_form_error(client, responder, incident):
    entry = make_entry(incident=incident, author=responder)
    client.force_login(incident.created_by)

    response = client.post(
        reverse("postmortems:entry_annotate", args=[entry.pk]), {"key_moment": "blame"}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    entry.refresh_from_db()
    assert entry.key_moment == ""


def test_a_facilitator_attaches_a_question_for_the_review(client, responder, incident):
    entry = make_entry(incident=incident, author=responder)
    client.force_login(incident.created_by)

    response = client.post(
        reverse("postmortems:entry_question_add", args=[entry.pk]),
        {"text": "What did the dashboard show at this point?"},
    )

    assert response.status_code == 302
    question = entry.questions.get()
    assert question.asked_by == incident.created_by
    body = client.get(entry.get_absolute_url()).content.decode()
    assert "What did the dashboard show at this point?" in body


def test_an_empty_or_huge_question_is_a_form_error(client, responder, incident):
    entry = make_entry(incident=incident, author=responder)
    client.force_login(incident.created_by)
    url = reverse("postmortems:entry_question_add", args=[entry.pk])

    empty = client.post(url, {"text": "   "})
    huge = client.post(url, {"text": "q" * 100_000})

    assert empty.status_code == huge.status_code == 200
    assert "Keep a question under" in huge.content.decode()
    assert not entry.questions.exists()


@pytest.mark.parametrize("who", ["author", "manager", "other participant", "signed-in"])
def test_only_facilitators_may_annotate(client, responder, incident, colleagues, who):
    entry = make_entry(incident=incident, author=responder)
    user = {"author": responder, "signed-in": make_user(), **colleagues}[who]
    client.force_login(user)

    marked = client.post(
        reverse("postmortems:entry_annotate", args=[entry.pk]), {"key_moment": "detected"}
    )
    asked = client.post(
        reverse("postmortems:entry_question_add", args=[entry.pk]), {"text": "Why?"}
    )

    assert marked.status_code == asked.status_code == 403
    entry.refresh_from_db()
    assert entry.key_moment == "" and not entry.questions.exists()


def test_an_admin_may_annotate(client, responder, incident):
    entry = make_entry(incident=incident, author=responder)
    client.force_login(make_user(is_superuser=True, is_staff=True))

    client.post(reverse("postmortems:entry_annotate", args=[entry.pk]), {"key_moment": "decision"})

    entry.refresh_from_db()
    assert entry.key_moment == "decision"


def test_annotating_is_post_only(client, responder, incident):
    entry = make_entry(incident=incident, author=responder)
    client.force_login(incident.created_by)

    assert client.get(reverse("postmortems:entry_annotate", args=[entry.pk])).status_code == 405
    assert client.get(reverse("postmortems:entry_question_add", args=[entry.pk])).status_code == 405


# --- The live language check ---


def test_language_check_returns_a_fragment_of_findings(client, responder):
    client.force_login(responder)

    response = client.post(
        reverse("postmortems:language_check"), {"text": "Obviously I should have checked."}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert "Obviously" in body and "should have checked" in body
    assert "reasonable at the time" in body


def test_language_check_reads_the_field_htmx_says_triggered_it(client, responder):
    client.force_login(responder)

    response = client.post(
        reverse("postmortems:language_check"),
        {"action": "I rolled back.", "observation": "It was careless."},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="observation",
    )

    assert "careless" in response.content.decode()


def test_language_check_without_findings_is_empty(client, responder):
    client.force_login(responder)

    response = client.post(reverse("postmortems:language_check"), {"text": "I rolled back."})

    assert response.content.decode().strip() == ""


def test_language_check_caps_its_input_and_writes_nothing(
    client, responder, django_assert_num_queries
):
    client.force_login(responder)
    client.post(reverse("postmortems:language_check"), {"text": "warm up"})

    with django_assert_num_queries(2):  # the session and the user: nothing else
        response = client.post(
            reverse("postmortems:language_check"), {"text": "a " * 30_000 + "obviously"}
        )

    assert response.status_code == 200
    assert "obviously" not in response.content.decode()


def test_language_check_is_post_only_and_needs_sign_in(client):
    url = reverse("postmortems:language_check")

    assert client.post(url, {"text": "obviously"}).status_code == 302
    client.force_login(make_user())
    assert client.get(url).status_code == 405


def test_the_entry_form_checks_language_live_as_the_author_types(client, responder, incident):
    client.force_login(responder)

    body = client.get(account_url(incident)).content.decode()

    check_url = reverse("postmortems:language_check")
    assert body.count(f'hx-post="{check_url}"') == 5
    assert 'hx-trigger="keyup changed delay:600ms, input changed delay:600ms, load"' in body
    assert 'aria-live="polite"' in body


def test_findings_are_listed_after_saving_but_never_block(client, responder, incident):
    client.force_login(responder)

    response = client.post(
        account_url(incident),
        entry_data(action="I just restarted it; obviously the wrong host."),
        follow=True,
    )

    entry = TimelineEntry.objects.get()
    assert entry.action.startswith("I just restarted")
    body = response.content.decode()
    assert "Some phrasing may read as hindsight or blame" in body
    assert "Notes on phrasing" in body
