import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _link_from(message) -> str:
    return re.search(r"http://testserver(/accounts/password-reset/\S+/)", message.body).group(1)


def test_password_reset_emails_a_link_that_sets_a_new_password_once(client):
    user = make_user(email="andy@example.com")

    client.post(reverse("accounts:password_reset"), {"email": "andy@example.com"})

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["andy@example.com"]
    assert "Reset your" in message.subject
    assert message.alternatives and message.alternatives[0][1] == "text/html"
    confirm = client.get(_link_from(message), follow=True)
    new_password = "a much longer new secret 42"
    done = client.post(
        confirm.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    reused = client.get(_link_from(message), follow=True)
    assert "not valid any more" in reused.text


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client):
    response = client.post(
        reverse("accounts:password_reset"), {"email": "nobody@example.com"}, follow=True
    )

    assert "Check your email" in response.text
    assert mail.outbox == []


def test_password_change_rejects_a_weak_password_with_a_message(client):
    user = make_user()
    client.force_login(user)

    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": "correct horse battery staple",
            "new_password1": "123",
            "new_password2": "123",
        },
    )

    assert response.status_code == 200
    assert "too short" in response.text
    user.refresh_from_db()
    assert user.check_password("correct horse battery staple")
