"""One-click preference links: signed, per person and per kind, safe from link scanners."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from postmortems import preferences
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def url(token: str) -> str:
    return reverse("postmortems:email_preferences", args=[token])


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def test_opening_the_link_shows_what_it_switches_off_and_changes_nothing(client):
    user = make_user()
    token = preferences.token_for(user, "notify_weekly_digest")

    response = client.get(url(token))

    assert response.status_code == 200
    assert "Weekly action-item digest" in response.content.decode()
    assert user.email in response.content.decode()
    assert fresh(user).notify_weekly_digest is True


def test_the_button_switches_only_that_kind_of_email_off_without_signing_in(client):
    user = make_user()
    token = preferences.token_for(user, "notify_action_items")

    response = client.post(url(token))

    assert response.status_code == 200
    assert "Switched off" in response.content.decode()
    user = fresh(user)
    assert user.notify_action_items is False
    assert user.notify_weekly_digest is True
    assert user.notify_account_requests is True


def test_a_mail_clients_one_click_post_works_without_a_csrf_token():
    user = make_user()
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        url(preferences.token_for(user, "notify_review_meetings")),
        {"List-Unsubscribe": "One-Click"},
    )

    assert response.status_code == 200
    assert fresh(user).notify_review_meetings is False


def test_a_second_click_is_harmless(client):
    user = make_user(notify_weekly_digest=False)

    response = client.post(url(preferences.token_for(user, "notify_weekly_digest")))

    assert response.status_code == 200
    assert "already switched off" in response.content.decode()


def test_a_token_changes_its_own_persons_settings_even_when_someone_else_is_signed_in(client):
    owner, other = make_user(), make_user()
    client.force_login(other)

    client.post(url(preferences.token_for(owner, "notify_action_items")))

    assert fresh(owner).notify_action_items is False
    assert fresh(other).notify_action_items is True


def test_a_token_altered_to_name_another_person_is_refused_and_changes_nothing(client):
    victim, attacker = make_user(), make_user()
    token = preferences.token_for(attacker, "notify_action_items")
    payload, rest = token.split(":", 1)
    forged_payload = signing.b64_encode(
        signing.JSONSerializer().dumps({"u": victim.pk, "f": "notify_action_items"})
    ).decode()

    for forged in (f"{forged_payload}:{rest}", token[:-2] + "xx", "nonsense"):
        response = client.post(url(forged))
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    assert fresh(victim).notify_action_items is True
    assert fresh(attacker).notify_action_items is True


def test_a_token_signed_for_another_purpose_is_refused(client):
    user = make_user()
    token = signing.dumps({"u": user.pk, "f": "notify_action_items"}, salt="accounts.invitation")

    response = client.post(url(token))

    assert response.status_code == 400
    assert fresh(user).notify_action_items is True


def test_a_token_for_a_field_that_is_not_an_email_preference_is_refused(client):
    user = make_user()
    token = signing.dumps({"u": user.pk, "f": "is_superuser"}, salt=preferences.SALT)

    response = client.post(url(token))

    assert response.status_code == 400
    assert fresh(user).is_active is True


def test_an_expired_link_gets_a_clear_page_and_changes_nothing(client):
    user = make_user()
    token = preferences.token_for(user, "notify_weekly_digest")

    with time_machine.travel(timezone.now() + preferences.MAX_AGE + timedelta(days=1)):
        response = client.post(url(token))

    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert fresh(user).notify_weekly_digest is True


def test_only_get_and_post_are_allowed(client):
    user = make_user()

    response = client.put(url(preferences.token_for(user, "notify_weekly_digest")))

    assert response.status_code == 405
    assert fresh(user).notify_weekly_digest is True


def test_every_kind_of_email_maps_to_a_preference_on_the_profile():
    profile_fields = {f.name for f in User._meta.fields if f.name.startswith("notify_")}

    assert preferences.FIELDS == profile_fields
