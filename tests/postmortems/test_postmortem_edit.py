"""Starting and editing the write-up: template, preview, no lost edits, history."""

import re

import pytest
from django.urls import reverse

from postmortems import blameless
from postmortems.models import Postmortem, PostmortemRevision
from postmortems.services import writeups as services
from tests.factories import make_incident, make_user


def edit_url(incident) -> str:
    return reverse("postmortems:postmortem_edit", args=[incident.pk])


def form_data(postmortem: Postmortem, **changes) -> dict:
    data = postmortem.section_data()
    data["version"] = str(postmortem.version)
    data.update(changes)
    return data


@pytest.fixture
def facilitator():
    return make_user(is_facilitator=True, display_name="Fran")


@pytest.fixture
def started(facilitator):
    incident = make_incident(facilitator=facilitator)
    return services.start_postmortem(incident, by=facilitator)


@pytest.mark.django_db
def test_starting_the_postmortem_fills_every_section_with_a_guiding_prompt(client, facilitator):
    incident = make_incident(facilitator=facilitator)
    client.force_login(facilitator)

    response = client.post(reverse("postmortems:postmortem_start", args=[incident.pk]))

    assert response.status_code == 302
    assert response["Location"] == edit_url(incident)
    postmortem = Postmortem.objects.get(incident=incident)
    assert postmortem.status == Postmortem.Status.DRAFT
    assert "what did people know, expect and assume" in postmortem.narrative
    assert all(getattr(postmortem, name).startswith("<!--") for name in Postmortem.SECTIONS)
    revision = postmortem.revisions.get()
    assert (revision.version, revision.edited_by) == (1, facilitator)


@pytest.mark.django_db
def test_starting_twice_keeps_the_first_write_up(client, started, facilitator):
    client.force_login(facilitator)

    client.post(reverse("postmortems:postmortem_start", args=[started.incident_id]))

    assert Postmortem.objects.filter(incident=started.incident_id).count() == 1


@pytest.mark.django_db
def test_the_guiding_prompts_never_show_in_the_rendered_page(client, started, facilitator):
    client.force_login(facilitator)

    response = client.get(reverse("postmortems:postmortem_detail", args=[started.incident_id]))

    assert "what did people know" not in response.content.decode()
    assert "Not written yet." in response.content.decode()


@pytest.mark.django_db
def test_saving_stores_a_new_version_and_a_revision_with_who_and_what(client, started):
    editor = make_user()
    started.incident.participants.create(user=editor, role="note_taker")
    client.force_login(editor)

    response = client.post(
        edit_url(started.incident), form_data(started, summary="The cache **expired**.")
    )

    assert response.status_code == 302
    started.refresh_from_db()
    assert started.version == 2
    assert started.summary == "The cache **expired**."
    assert started.updated_by == editor
    revision = started.revisions.get(version=2)
    assert revision.edited_by == editor
    assert revision.data["summary"] == "The cache **expired**."


@pytest.mark.django_db
def test_saving_without_any_change_creates_no_version(client, started, facilitator):
    client.force_login(facilitator)

    client.post(edit_url(started.incident), form_data(started))

    started.refresh_from_db()
    assert started.version == 1
    assert started.revisions.count() == 1


@pytest.mark.django_db
def test_a_browser_sending_crlf_line_endings_does_not_create_a_version(
    client, started, facilitator
):
    client.force_login(facilitator)
    data = form_data(started)
    crlf = {name: data[name].replace("\n", "\r\n") for name in Postmortem.SECTIONS}

    client.post(edit_url(started.incident), {**data, **crlf})

    started.refresh_from_db()
    assert started.version == 1


@pytest.mark.django_db
def test_leading_spaces_of_markdown_are_kept(client, started, facilitator):
    client.force_login(facilitator)

    client.post(edit_url(started.incident), form_data(started, summary="    indented code"))

    started.refresh_from_db()
    assert started.summary == "    indented code"


@pytest.mark.django_db
def test_preview_shows_the_rendered_text_beside_the_form_and_saves_nothing(
    client, started, facilitator
):
    client.force_login(facilitator)

    response = client.post(
        edit_url(started.incident),
        form_data(started, summary="Some **bold** words", preview="1"),
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>bold</strong>" in html
    assert "Some **bold** words" in html  # still in the textarea, to keep writing
    assert "Preview only" in html
    started.refresh_from_db()
    assert started.version == 1
    assert "bold" not in started.summary


@pytest.mark.django_db
def test_preview_escapes_script_in_the_preview_pane(client, started, facilitator):
    client.force_login(facilitator)

    response = client.post(
        edit_url(started.incident),
        form_data(
            started, summary="<script>alert('x')</script><img src=x onerror=alert(1)>", preview="1"
        ),
    )

    html = response.content.decode()
    assert "<script>alert" not in html
    assert "<img src=x onerror" not in html
    assert "&lt;script&gt;alert" in html  # the author's text, escaped inside the textarea


@pytest.mark.django_db
def test_blameless_prompts_are_shown_per_section_after_preview(client, started, facilitator):
    client.force_login(facilitator)

    response = client.post(
        edit_url(started.incident),
        form_data(started, narrative="Sam should have checked.", preview="1"),
    )

    html = response.content.decode()
    findings = re.search(r'id="findings-narrative".*?</div>\s*</div>', html, re.DOTALL).group(0)
    assert "Hindsight: it judges a past moment" in findings
    assert "what made this look reasonable at the time?" in findings
    assert "Hindsight" not in re.search(r'id="findings-summary".*?</div>', html, re.DOTALL).group(0)


@pytest.mark.django_db
def test_a_stale_save_shows_both_texts_with_status_409_and_saves_nothing(client, started):
    incident = started.incident
    alice, bob = make_user(display_name="Alice"), make_user(display_name="Bob")
    incident.participants.create(user=alice, role="co_facilitator")
    incident.participants.create(user=bob, role="note_taker")
    stale = form_data(started)
    client.force_login(bob)
    client.post(edit_url(incident), form_data(started, summary="Bob's summary"))
    client.force_login(alice)

    response = client.post(edit_url(incident), {**stale, "summary": "Alice's <b>own</b> summary"})

    assert response.status_code == 409
    html = response.content.decode()
    # Her text, intact and still editable in a textarea named like the form field...
    assert re.search(
        r'<textarea[^>]*name="summary"[^>]*>\n'
        r"Alice&#x27;s &lt;b&gt;own&lt;/b&gt; summary</textarea>",
        html,
    )
    # ...beside the current text, rendered read-only.
    assert "<p>Bob's summary</p>" in html or "<p>Bob&#x27;s summary</p>" in html
    assert 'name="version" value="2"' in html
    assert "Both of you changed this" in html
    started.refresh_from_db()
    assert (started.version, started.summary) == (2, "Bob's summary")
    assert started.revisions.count() == 2


@pytest.mark.django_db
def test_save_mine_over_it_saves_her_text_on_top_of_the_current_version(client, started):
    incident = started.incident
    alice, bob = make_user(), make_user()
    incident.participants.create(user=alice, role="co_facilitator")
    incident.participants.create(user=bob, role="note_taker")
    client.force_login(bob)
    client.post(edit_url(incident), form_data(started, summary="Bob's summary"))
    started.refresh_from_db()
    client.force_login(alice)

    # What the conflict page's "Save mine over it" submits: her text, the current version.
    response = client.post(edit_url(incident), form_data(started, summary="Alice's summary"))

    assert response.status_code == 302
    started.refresh_from_db()
    assert (started.version, started.summary) == (3, "Alice's summary")


@pytest.mark.django_db
def test_a_section_only_the_other_person_changed_is_kept_theirs(client, started):
    incident = started.incident
    alice, bob = make_user(), make_user()
    incident.participants.create(user=alice, role="co_facilitator")
    incident.participants.create(user=bob, role="note_taker")
    stale = form_data(started)
    client.force_login(bob)
    client.post(edit_url(incident), form_data(started, narrative="Bob's narrative"))
    client.force_login(alice)

    response = client.post(edit_url(incident), {**stale, "summary": "Alice's summary"})

    assert response.status_code == 409
    html = response.content.decode()
    assert "Only they changed this" in html
    assert "Only you changed this" in html
    # The form carries Bob's narrative (hidden), so saving hers does not undo his.
    assert re.search(
        r'<textarea name="narrative" hidden[^>]*>\nBob&#x27;s narrative</textarea>', html
    )
    assert re.search(r'name="summary"[^>]*>\nAlice&#x27;s summary</textarea>', html)


@pytest.mark.django_db
def test_the_conflict_page_keeps_text_with_leading_newlines_exactly(client, started):
    incident = started.incident
    bob = make_user()
    incident.participants.create(user=bob, role="note_taker")
    stale = form_data(started)
    client.force_login(bob)
    client.post(edit_url(incident), form_data(started, summary="theirs"))
    client.force_login(incident.created_by)

    response = client.post(edit_url(incident), {**stale, "summary": "\n\nmine"})

    # Browsers drop one newline right after <textarea>; the page adds one so none is lost.
    assert "\n\n\nmine</textarea>" in response.content.decode()


@pytest.mark.django_db
def test_a_tampered_version_is_a_conflict_not_a_save(client, started, facilitator):
    client.force_login(facilitator)

    response = client.post(
        edit_url(started.incident), form_data(started, summary="x", version="99")
    )

    assert response.status_code == 409
    started.refresh_from_db()
    assert started.version == 1


@pytest.mark.django_db
def test_a_missing_version_re_shows_the_form_with_the_text_and_a_message(
    client, started, facilitator
):
    client.force_login(facilitator)
    data = form_data(started, summary="Keep me")
    del data["version"]

    response = client.post(edit_url(started.incident), data)

    assert response.status_code == 400
    assert "Keep me" in response.content.decode()
    assert "lost track of which version" in response.content.decode()
    started.refresh_from_db()
    assert started.version == 1


@pytest.mark.django_db
def test_a_published_write_up_cannot_be_edited_but_a_late_save_keeps_the_text_on_screen(
    client, started, facilitator
):
    services.transition_postmortem(started, "submit", by=facilitator)
    services.transition_postmortem(started, "approve", by=make_user(is_superuser=True))
    client.force_login(facilitator)

    get_response = client.get(edit_url(started.incident))
    post_response = client.post(
        edit_url(started.incident), form_data(started, summary="Late words")
    )

    assert get_response.status_code == 302
    assert post_response.status_code == 409
    assert "Late words" in post_response.content.decode()
    started.refresh_from_db()
    assert started.version == 1


@pytest.mark.django_db
def test_history_lists_each_version_with_who_and_which_sections_changed(
    client, started, facilitator
):
    client.force_login(facilitator)
    client.post(edit_url(started.incident), form_data(started, summary="First words"))
    started.refresh_from_db()
    client.post(edit_url(started.incident), form_data(started, impact="Checkout down 12 min"))

    response = client.get(reverse("postmortems:postmortem_history", args=[started.incident_id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "v3" in html and "v2" in html and "v1" in html
    assert "<summary>Impact</summary>" in html
    assert "<summary>Summary</summary>" in html
    assert "+Checkout down 12 min" in html
    assert "Started from the template" in html


@pytest.mark.django_db
def test_history_shows_a_fixed_number_of_queries_whatever_the_number_of_versions(
    client, started, facilitator, django_assert_max_num_queries
):
    client.force_login(facilitator)
    url = reverse("postmortems:postmortem_history", args=[started.incident_id])
    with django_assert_max_num_queries(12):
        client.get(url)
    for n in range(45):
        PostmortemRevision.objects.create(
            postmortem=started, version=n + 2, edited_by=facilitator, data={"summary": str(n)}
        )
    with django_assert_max_num_queries(12):
        response = client.get(url + "?page=2")
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_edit_form_wires_live_language_prompts_only_when_that_url_exists(
    client, started, facilitator
):
    client.force_login(facilitator)

    html = client.get(edit_url(started.incident)).content.decode()

    try:
        reverse("postmortems:language_check")
    except Exception:  # noqa: BLE001 (the other area may not have added it yet)
        assert 'hx-trigger="keyup changed delay:600ms"' not in html
    else:
        assert 'hx-trigger="keyup changed delay:600ms"' in html


@pytest.mark.django_db
def test_findings_from_the_blameless_check_show_beside_the_section_after_saving(
    client, started, facilitator
):
    text = "Sam should have checked the replica; it was obviously human error."
    expected = blameless.check(text)
    client.force_login(facilitator)

    response = client.post(
        edit_url(started.incident), form_data(started, narrative=text), follow=True
    )

    html = response.content.decode()
    findings = re.search(r'id="findings-narrative".*?</div>\s*</div>', html, re.DOTALL)
    if expected:
        assert expected[0].phrase in findings.group(0)
    else:
        assert "Blameless-language prompts" not in html


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_saves_from_the_same_version_never_both_win():
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serialises writes anyway")
    facilitator = make_user(is_facilitator=True)
    postmortem = services.start_postmortem(make_incident(facilitator=facilitator), by=facilitator)
    barrier = Barrier(2)

    def save(summary: str) -> str:
        try:
            barrier.wait()
            data = {**postmortem.section_data(), "summary": summary}
            services.save_postmortem(postmortem, data, base_version=1, by=facilitator)
            return "saved"
        except services.EditConflict:
            return "conflict"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(save, ["first", "second"]))

    assert outcomes == ["conflict", "saved"]
    postmortem.refresh_from_db()
    assert postmortem.version == 2
    assert postmortem.revisions.count() == 2
