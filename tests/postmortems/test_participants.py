"""Adding people to an incident (by choice or by invitation) and removing them."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Invitation, User
from postmortems import tasks
from postmortems.models import IncidentChange, Participant
from tests.factories import make_entry, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def account_requests(monkeypatch) -> list[int]:
    """The participant ids whose account request was queued (the queue is the edge we watch)."""
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_account_request, "delay_on_commit", queued.append)
    return queued


def add_url(incident) -> str:
    return reverse("postmortems:participant_add", args=[incident.pk])


def remove_url(participant) -> str:
    return reverse("postmortems:participant_remove", args=[participant.incident_id, participant.pk])


# --- Adding --------------------------------------------------------------------------------------


def test_facilitator_adds_an_existing_person_who_is_asked_for_their_account(
    client, account_requests
):
    incident = make_incident()
    andy = make_user(display_name="Andy")
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"user": andy.pk, "role": "responder"})

    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url() + "#participants"
    participant = Participant.objects.get(incident=incident, user=andy)
    assert participant.role == Participant.Role.RESPONDER
    assert participant.added_by == incident.created_by
    assert account_requests == [participant.pk]
    change = IncidentChange.objects.get(incident=incident)
    assert change.changes == {"participants": ["", "Andy (Responder)"]}


def test_an_email_that_matches_someone_here_adds_that_person_without_an_invitation(
    client, account_requests, django_capture_on_commit_callbacks
):
    incident = make_incident()
    andy = make_user(email="andy@example.com")
    client.force_login(incident.created_by)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(add_url(incident), {"email": "ANDY@example.com", "role": "observer"})

    assert Participant.objects.get(incident=incident, user=andy).role == "observer"
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_a_new_email_invites_the_person_and_adds_them(
    client, account_requests, django_capture_on_commit_callbacks
):
    incident = make_incident()
    client.force_login(incident.created_by)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            add_url(incident),
            {"email": "new.person@example.com", "display_name": "New Person", "role": "responder"},
        )

    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert not user.is_active
    assert user.display_name == "New Person"
    assert Invitation.objects.get(user=user).invited_by == incident.created_by
    participant = Participant.objects.get(incident=incident, user=user)
    assert account_requests == [participant.pk]
    assert [message.to for message in mail.outbox] == [["new.person@example.com"]]


def test_someone_invited_earlier_is_added_and_invited_again(
    client, account_requests, django_capture_on_commit_callbacks
):
    incident = make_incident()
    pending = User.objects.create_user("pending@example.com", None, is_active=False)
    client.force_login(incident.created_by)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(add_url(incident), {"email": "pending@example.com", "role": "responder"})

    assert Participant.objects.filter(incident=incident, user=pending).exists()
    assert Invitation.objects.filter(user=pending).count() == 1
    assert len(mail.outbox) == 1


def test_a_switched_off_account_is_not_added(client, account_requests):
    incident = make_incident()
    make_user(email="gone@example.com", is_active=False)
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"email": "gone@example.com", "role": "responder"})

    assert response.status_code == 200
    assert "switched off" in response.content.decode()
    assert incident.participants.count() == 1
    assert account_requests == []


@pytest.mark.parametrize("by", ["select", "email"])
def test_adding_someone_twice_gives_a_clear_error_and_changes_nothing(client, account_requests, by):
    incident = make_incident()
    andy = make_participant(incident=incident, user=make_user(display_name="Andy")).user
    client.force_login(incident.created_by)
    data = {"user": andy.pk} if by == "select" else {"email": andy.email.upper()}

    response = client.post(add_url(incident), {**data, "role": "observer"})

    assert response.status_code == 200
    assert "Andy is already on this incident as responder." in response.content.decode()
    assert Participant.objects.get(incident=incident, user=andy).role == "responder"
    assert not IncidentChange.objects.exists()
    assert account_requests == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"role": "responder"}, "Name someone already here, or type the email address of"),
        ({"email": "not-an-email", "role": "responder"}, "Enter a valid email address."),
        ({"user": "999999", "role": "responder"}, "No one here matches “999999”."),
        ({"user": "abc", "role": "responder"}, "No one here matches “abc”."),
        ({"user": "9" * 30, "role": "responder"}, "No one here matches"),
        ({"user": "x" * 300, "role": "responder"}, "too long for a name or an email address"),
        ({"email": "a@example.com", "role": "captain"}, "Select a valid choice."),
    ],
)
def test_bad_additions_are_refused_with_a_message(client, account_requests, data, message):
    incident = make_incident()
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert incident.participants.count() == 1
    assert not User.objects.filter(email="a@example.com").exists()


def test_choosing_a_person_and_typing_another_email_is_refused(client, account_requests):
    incident = make_incident()
    andy = make_user()
    client.force_login(incident.created_by)

    response = client.post(
        add_url(incident),
        {"user": andy.pk, "email": "someone.else@example.com", "role": "observer"},
    )

    assert "not both" in response.content.decode()
    assert incident.participants.count() == 1


def test_the_form_asks_for_an_email_or_name_and_lists_nobody(client):
    incident = make_incident()
    someone = make_user(display_name="Someone Else")
    client.force_login(incident.created_by)

    body = client.get(add_url(incident)).content.decode()

    # A list of every account would be thousands of options in a real organisation.
    assert 'type="text" name="user"' in body
    assert '<select name="user"' not in body
    assert someone.email not in body


@pytest.mark.parametrize("typed", ["andy@example.com", "ANDY@example.com", "Andy Bell", "bell"])
def test_someone_already_here_is_found_by_email_or_by_name(client, account_requests, typed):
    incident = make_incident()
    andy = make_user(email="andy@example.com", display_name="Andy Bell")
    make_user(email="anna@example.com", display_name="Anna Ford")
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"user": typed, "role": "responder"})

    assert response.status_code == 302
    assert Participant.objects.filter(incident=incident, user=andy).exists()


def test_a_name_that_fits_several_people_lists_them_and_adds_nobody(client, account_requests):
    incident = make_incident()
    make_user(email="andy@example.com", display_name="Andy Bell")
    make_user(email="andrea@example.com", display_name="Andrea Bell")
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"user": "Bell", "role": "responder"})

    body = response.content.decode()
    assert "More than one person matches “Bell”" in body
    assert "Andy Bell (andy@example.com)" in body and "Andrea Bell (andrea@example.com)" in body
    # What was typed stays in the box.
    assert 'value="Bell"' in body
    assert incident.participants.count() == 1
    assert account_requests == []


def test_an_exact_name_wins_over_longer_ones(client, account_requests):
    incident = make_incident()
    mei = make_user(display_name="Mei Chen")
    make_user(display_name="Mei Cheng")
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"user": "mei chen", "role": "responder"})

    assert response.status_code == 302
    assert Participant.objects.filter(incident=incident, user=mei).exists()


def test_inactive_people_are_not_found_as_someone_already_here(client, account_requests):
    incident = make_incident()
    gone = make_user(is_active=False, display_name="Gone Person")
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"user": gone.email, "role": "responder"})

    assert f"No one here matches “{gone.email}”" in response.content.decode()
    assert incident.participants.count() == 1


def test_adding_with_htmx_returns_the_updated_section(client, account_requests):
    incident = make_incident()
    andy = make_user(display_name="Andy")
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"user": andy.pk, "role": "responder"}, **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="participants"')
    assert "<html" not in body
    assert "Andy is added as responder." in body
    assert Participant.objects.filter(incident=incident, user=andy).exists()


def test_a_refused_htmx_addition_shows_the_error_in_the_section(client, account_requests):
    incident = make_incident()
    client.force_login(incident.created_by)

    response = client.post(add_url(incident), {"role": "responder"}, **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "Name someone already here" in body
    assert incident.participants.count() == 1


def test_the_add_form_works_without_javascript(client):
    incident = make_incident()
    client.force_login(incident.created_by)

    body = client.get(incident.get_absolute_url()).content.decode()

    assert f'method="post" action="{add_url(incident)}"' in body


def test_an_admin_who_is_not_on_the_incident_may_add_people(client, account_requests):
    incident = make_incident()
    client.force_login(make_user(is_superuser=True))

    response = client.post(add_url(incident), {"user": make_user().pk, "role": "observer"})

    assert response.status_code == 302
    assert incident.participants.count() == 2


def test_a_co_facilitator_may_add_people(client, account_requests):
    incident = make_incident()
    co = make_participant(incident=incident, role=Participant.Role.CO_FACILITATOR).user
    client.force_login(co)

    client.post(add_url(incident), {"user": make_user().pk, "role": "observer"})

    assert incident.participants.count() == 3


@pytest.mark.parametrize("role", ["responder", "note_taker", "observer"])
def test_other_participants_may_not_add_people(client, account_requests, role):
    incident = make_incident()
    client.force_login(make_participant(incident=incident, role=role).user)

    response = client.post(add_url(incident), {"user": make_user().pk, "role": "observer"})

    assert response.status_code == 403
    assert incident.participants.count() == 2
    assert account_requests == []


# --- Removing ------------------------------------------------------------------------------------


def test_removing_asks_first_then_removes_and_records_it(client):
    incident = make_incident()
    observer = make_participant(
        incident=incident, user=make_user(display_name="Olly"), role=Participant.Role.OBSERVER
    )
    client.force_login(incident.created_by)

    confirm = client.get(remove_url(observer))
    assert confirm.status_code == 200
    assert "Remove Olly" in confirm.content.decode()
    assert Participant.objects.filter(pk=observer.pk).exists()

    response = client.post(remove_url(observer))

    assert response.status_code == 302
    assert not Participant.objects.filter(pk=observer.pk).exists()
    change = IncidentChange.objects.get(incident=incident)
    assert change.changes == {"participants": ["Olly (Observer)", ""]}
    assert change.changed_by == incident.created_by


def test_the_last_facilitator_cannot_be_removed(client):
    incident = make_incident()
    facilitator = incident.participants.get()
    client.force_login(incident.created_by)

    confirm = client.get(remove_url(facilitator)).content.decode()
    response = client.post(remove_url(facilitator), follow=True)

    assert "the only facilitator" in confirm
    assert 'type="submit" class="btn btn-danger"' not in confirm
    assert "the only facilitator" in response.content.decode()
    assert Participant.objects.filter(pk=facilitator.pk).exists()
    assert not IncidentChange.objects.exists()


def test_a_facilitator_can_be_removed_when_a_co_facilitator_remains(client):
    incident = make_incident()
    facilitator = incident.participants.get()
    make_participant(incident=incident, role=Participant.Role.CO_FACILITATOR)
    client.force_login(incident.created_by)

    client.post(remove_url(facilitator))

    assert not Participant.objects.filter(pk=facilitator.pk).exists()


def test_a_facilitator_who_leaves_a_restricted_incident_lands_on_the_list(client):
    incident = make_incident(visibility="restricted")
    make_participant(incident=incident, role=Participant.Role.CO_FACILITATOR)
    myself = incident.participants.get(user=incident.created_by)
    client.force_login(incident.created_by)

    response = client.post(remove_url(myself))

    assert response["Location"] == reverse("postmortems:incident_list")
    assert not Participant.objects.filter(pk=myself.pk).exists()


@pytest.mark.parametrize("shared", [True, False])
def test_someone_who_has_written_entries_stays_on_the_incident(client, shared):
    incident = make_incident()
    author = make_user(display_name="Writer")
    make_entry(incident=incident, author=author, shared=shared)
    participant = Participant.objects.get(incident=incident, user=author)
    client.force_login(incident.created_by)

    confirm = client.get(remove_url(participant)).content.decode()
    response = client.post(remove_url(participant), follow=True)

    assert "Writer has started their account" in confirm
    assert "Writer has started their account" in response.content.decode()
    assert Participant.objects.filter(pk=participant.pk).exists()
    assert not IncidentChange.objects.exists()


def test_a_participant_of_another_incident_is_404(client):
    incident = make_incident()
    other = make_participant(incident=make_incident())
    client.force_login(incident.created_by)

    url = reverse("postmortems:participant_remove", args=[incident.pk, other.pk])

    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert Participant.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize("role", ["responder", "note_taker", "observer"])
def test_other_participants_may_not_remove_anyone(client, role):
    incident = make_incident()
    observer = make_participant(incident=incident, role=Participant.Role.OBSERVER)
    client.force_login(make_participant(incident=incident, role=role).user)

    assert client.get(remove_url(observer)).status_code == 403
    assert client.post(remove_url(observer)).status_code == 403
    assert Participant.objects.filter(pk=observer.pk).exists()


def test_history_shows_who_was_added_and_removed(client, account_requests):
    incident = make_incident()
    andy = make_user(display_name="Andy")
    client.force_login(incident.created_by)
    client.post(add_url(incident), {"user": andy.pk, "role": "responder"})
    client.post(remove_url(Participant.objects.get(incident=incident, user=andy)))

    body = client.get(reverse("postmortems:incident_history", args=[incident.pk])).content.decode()

    assert body.count("Andy (Responder)") == 2
