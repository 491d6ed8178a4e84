import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import make_user

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a brand new secret 2026"


def _invite(client, capture, email="new@example.com"):
    client.force_login(make_user(is_facilitator=True))
    with capture(execute=True):
        client.post(reverse("accounts:invite"), {"email": email, "display_name": "New Person"})
    client.logout()
    return re.search(r"http://testserver(/accounts/invitation/\S+/)", mail.outbox[-1].body).group(1)


def _accept(client, link):
    return client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})


def test_a_facilitator_invites_by_email_and_the_link_signs_the_person_in(
    client, django_capture_on_commit_callbacks
):
    link = _invite(client, django_capture_on_commit_callbacks)

    invited = User.objects.get(email="new@example.com")
    assert not invited.is_active
    assert mail.outbox[-1].to == ["new@example.com"]
    response = _accept(client, link)
    assert response.status_code == 302
    invited.refresh_from_db()
    assert invited.is_active and invited.check_password(NEW_PASSWORD)
    assert client.session[SESSION_KEY] == str(invited.pk)


def test_an_invitation_works_only_once(client, django_capture_on_commit_callbacks):
    link = _invite(client, django_capture_on_commit_callbacks)
    _accept(client, link)
    client.logout()

    again = client.post(
        link, {"new_password1": "other pass 12345", "new_password2": "other pass 12345"}
    )

    assert again.status_code == 410
    assert "already been used" in again.text
    assert User.objects.get(email="new@example.com").check_password(NEW_PASSWORD)


def test_an_expired_invitation_is_refused(client, django_capture_on_commit_callbacks, settings):
    link = _invite(client, django_capture_on_commit_callbacks)

    with time_machine.travel(timedelta(days=8)):
        response = _accept(client, link)

    assert response.status_code == 410
    assert "expired" in response.text
    assert not User.objects.get(email="new@example.com").is_active


def test_a_tampered_invitation_link_is_refused(client, django_capture_on_commit_callbacks):
    link = _invite(client, django_capture_on_commit_callbacks)

    response = client.get(link.replace("/invitation/", "/invitation/x"))

    assert response.status_code == 410
    assert "not valid" in response.text


def test_people_who_are_not_facilitators_cannot_invite(client):
    client.force_login(make_user())

    response = client.post(reverse("accounts:invite"), {"email": "new@example.com"})

    assert response.status_code == 403
    assert not User.objects.filter(email="new@example.com").exists()
    assert mail.outbox == []


def test_inviting_someone_who_already_has_an_account_sends_nothing(client):
    make_user(email="here@example.com")
    client.force_login(make_user(is_facilitator=True))

    response = client.post(reverse("accounts:invite"), {"email": "HERE@example.com"}, follow=True)

    assert "already has an account" in response.text
    assert mail.outbox == []
    assert User.objects.filter(email__iexact="here@example.com").count() == 1
