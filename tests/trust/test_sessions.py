"""Sign-in and sessions: throttling by name and address, and sessions that end when they must.

tests/accounts/test_sign_in.py already covers the lock on one name-and-address pair and other
names from the same address; these add other addresses, session keys and session endings.
"""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

SIGN_IN = "/accounts/sign-in/"
HOME = "/"


def client_from(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def sign_in(client: Client, email: str, password: str = PASSWORD):
    return client.post(SIGN_IN, {"username": email, "password": password})


def is_signed_in(client: Client) -> bool:
    response = client.get(HOME)
    if response.status_code == 302:
        assert response["Location"].startswith(SIGN_IN)
        return False
    assert response.status_code == 200
    return True


def test_a_lock_on_one_address_leaves_the_same_name_free_from_another(settings, trust_figures):
    settings.AXES_FAILURE_LIMIT = 3
    user = make_user(email="target@example.com")
    attacker = client_from("203.0.113.7")
    for _ in range(3):
        sign_in(attacker, "target@example.com", "wrong password")

    locked = sign_in(attacker, "target@example.com")  # even the right password is refused
    elsewhere = client_from("198.51.100.20")
    owner = sign_in(elsewhere, "target@example.com")

    trust_figures(
        "throttling",
        failures_to_lock=3,
        locked_pair_status=locked.status_code,
        same_name_other_address_status=owner.status_code,
    )
    assert locked.status_code == 429
    assert SESSION_KEY not in attacker.session
    assert owner.status_code == 302
    assert elsewhere.session[SESSION_KEY] == str(user.pk)


def test_failures_spread_over_several_addresses_lock_none_of_them(settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user(email="target@example.com")
    for n in range(1, 4):
        client = client_from(f"203.0.113.{n}")
        for _ in range(2):  # one short of the limit at each address
            assert sign_in(client, "target@example.com", "wrong").status_code == 200

    assert sign_in(client_from("203.0.113.1"), "target@example.com").status_code == 302


def test_signing_in_gives_a_new_session_key_and_drops_the_old_one():
    user = make_user()
    client = Client()
    session = client.session  # an anonymous session, e.g. one an attacker planted
    session["seen"] = True
    session.save()
    client.cookies["sessionid"] = session.session_key
    planted = session.session_key

    assert sign_in(client, user.email).status_code == 302

    assert client.session.session_key != planted
    assert not SessionStore().exists(planted)
    assert client.session[SESSION_KEY] == str(user.pk)


def test_signing_out_ends_the_session_on_the_server_too():
    user = make_user()
    client = Client()
    sign_in(client, user.email)
    key = client.cookies["sessionid"].value

    client.post("/accounts/sign-out/")

    assert not SessionStore().exists(key)
    replay = Client()  # someone who copied the cookie before the sign-out
    replay.cookies["sessionid"] = key
    assert not is_signed_in(replay)


def test_deactivating_a_person_ends_their_sessions_at_the_next_request():
    user = make_user()
    client = Client()
    sign_in(client, user.email)
    assert is_signed_in(client)

    user.is_active = False
    user.save(update_fields=["is_active"])

    assert not is_signed_in(client)
    assert client.post("/incidents/new/", {"title": "x"}).status_code == 302


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one():
    user = make_user()
    laptop, phone = Client(), Client()
    sign_in(laptop, user.email)
    sign_in(phone, user.email)
    assert is_signed_in(laptop) and is_signed_in(phone)

    response = laptop.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a brand new passphrase",
            "new_password2": "a brand new passphrase",
        },
    )

    assert response.status_code == 302
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)


def test_a_password_reset_ends_every_session():
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    user = make_user()
    somewhere = Client()
    sign_in(somewhere, user.email)
    user.refresh_from_db()  # the token covers last_login, which signing in just set
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    resetter = Client()
    form_url = resetter.get(f"/accounts/password-reset/{uid}/{token}/")["Location"]

    resetter.post(
        form_url,
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )

    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")
    assert not is_signed_in(somewhere)


def _error_text(response) -> str:
    html = response.content.decode()
    found = re.search(r'<div[^>]*class="[^"]*alert[^"]*"[^>]*>(.*?)</div>', html, re.DOTALL)
    assert found, "no error shown"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer():
    make_user(email="known@example.com")

    unknown = sign_in(Client(), "nobody@example.com", "whatever it is")
    wrong = sign_in(Client(), "known@example.com", "whatever it is")

    assert unknown.status_code == wrong.status_code == 200
    assert _error_text(unknown) == _error_text(wrong)
    assert "correct email address and password" in _error_text(wrong)
    # Nor does an inactive account give itself away.
    make_user(email="gone@example.com", is_active=False)
    assert _error_text(sign_in(Client(), "gone@example.com", PASSWORD)) == _error_text(wrong)
