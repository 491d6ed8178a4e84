import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_a_person_signs_in_with_their_email_in_any_case_and_lands_home(client):
    user = make_user(email="mara@example.com")

    response = client.post(
        reverse("accounts:login"), {"username": "Mara@Example.com", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session[SESSION_KEY] == str(user.pk)


def test_a_wrong_password_shows_the_form_again_with_a_message(client):
    make_user(email="mara@example.com")

    response = client.post(
        reverse("accounts:login"), {"username": "mara@example.com", "password": "nope"}
    )

    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    assert "correct email address and password" in response.text
    assert 'value="mara@example.com"' in response.text


def test_signing_out_needs_a_post_and_ends_the_session(client):
    client.force_login(make_user())

    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert SESSION_KEY not in client.session


def test_repeated_failures_lock_the_name_and_address_pair_but_not_other_names(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user(email="target@example.com")
    other = make_user(email="other@example.com")
    url = reverse("accounts:login")
    for _ in range(3):
        client.post(url, {"username": "target@example.com", "password": "wrong"})

    # The same name in other capitals is the same name.
    locked = client.post(url, {"username": "TARGET@example.com", "password": PASSWORD})
    other_person = client.post(url, {"username": "other@example.com", "password": PASSWORD})

    assert locked.status_code == 429
    assert "Too many attempts" in locked.text
    assert other_person.status_code == 302
    assert client.session[SESSION_KEY] == str(other.pk)


def test_inactive_people_cannot_sign_in(client):
    make_user(email="gone@example.com", is_active=False)

    client.post(reverse("accounts:login"), {"username": "gone@example.com", "password": PASSWORD})

    assert SESSION_KEY not in client.session
