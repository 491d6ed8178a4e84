"""Security logging: one structured line per denial, failed sign-in and lockout, and no secrets.

The capture is a handler on the root logger rather than pytest's caplog, so these run the same
with `-p no:logging`.
"""

import json
import logging
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import resolve
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import invitations
from accounts.models import Invitation
from postmortems import preferences, security_log
from tests.factories import PASSWORD, make_incident, make_participant, make_user

pytestmark = pytest.mark.django_db

FIELDS = {"event", "time", "ip", "method", "path", "user_id"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def security(self, event: str | None = None) -> list[dict]:
        lines = [json.loads(r.getMessage()) for r in self.records if r.name == "security"]
        return [line for line in lines if event is None or line["event"] == event]

    def text(self) -> str:
        """Everything written, as a handler would write it (messages, arguments, tracebacks)."""
        return "\n".join(self.format(record) for record in self.records)


@pytest.fixture
def logs():
    capture = Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(previous)


def test_a_refused_view_leaves_one_structured_line(logs):
    incident = make_incident()
    responder = make_participant(incident=incident).user
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(responder)

    response = client.post(f"/incidents/{incident.pk}/edit/", {"title": "Mine now"})

    assert response.status_code == 403
    [line] = logs.security()
    assert FIELDS <= set(line)
    assert line["event"] == "permission_denied"
    assert line["user_id"] == responder.pk
    assert line["path"] == f"/incidents/{incident.pk}/edit/"
    assert line["method"] == "POST" and line["status"] == 403
    assert line["ip"] == "203.0.113.9"
    assert abs(datetime.fromisoformat(line["time"]) - datetime.now().astimezone()) < timedelta(
        minutes=1
    )


def test_a_post_without_a_csrf_token_is_logged_as_such_once(logs):
    user = make_user(is_facilitator=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.post("/incidents/new/", {"title": "x"}).status_code == 403

    assert [line["event"] for line in logs.security()] == ["csrf_failure"]


def test_a_failed_sign_in_leaves_one_line_that_names_nobody_in_clear(logs):
    user = make_user(email="mara@example.com")

    Client().post("/accounts/sign-in/", {"username": "Mara@example.com", "password": "guess 1"})

    [line] = logs.security()
    assert line["event"] == "login_failed"
    assert line["known_user_id"] == user.pk
    assert line["name_hash"] == security_log.name_hash("mara@example.com")
    assert "mara@example.com" not in json.dumps(line).lower()


def test_an_unknown_name_is_logged_without_a_user(logs):
    Client().post("/accounts/sign-in/", {"username": "nobody@example.com", "password": "x"})

    [line] = logs.security("login_failed")
    assert line["known_user_id"] is None and line["name_hash"]


def test_each_attempt_up_to_and_during_a_lockout_is_one_line(logs, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user(email="target@example.com")
    client = Client(REMOTE_ADDR="203.0.113.50")
    statuses = [
        client.post(
            "/accounts/sign-in/", {"username": "target@example.com", "password": f"try {n}"}
        ).status_code
        for n in range(5)
    ]

    assert statuses == [200, 200, 429, 429, 429]
    events = [line["event"] for line in logs.security()]
    assert events == ["login_failed", "login_failed", "lockout", "lockout", "lockout"]
    assert {line["ip"] for line in logs.security()} == {"203.0.113.50"}
    assert logs.security("lockout")[0]["failures"] == 3


def test_the_path_of_a_link_with_a_token_is_logged_without_it():
    token = "eyJzZWNyZXQiOjF9:1vXyZa:signature-part"
    request = RequestFactory().get(f"/accounts/invitation/{token}/")
    request.resolver_match = resolve(request.path)
    capture = Capture()
    logger = logging.getLogger("security")
    logger.addHandler(capture)
    try:
        security_log.log_event("forbidden", request)
    finally:
        logger.removeHandler(capture)

    [line] = capture.security()
    assert line["path"] == "/accounts/invitation/[token]/"
    assert token not in capture.text()


def test_no_password_session_key_csrf_token_or_signed_token_reaches_any_log(
    logs, settings, trust_figures
):
    settings.AXES_FAILURE_LIMIT = 3
    facilitator = make_user(is_facilitator=True, email="fac@example.com")
    secrets = ["first wrong secret", "second wrong secret", PASSWORD]

    # Failed sign-ins, a lockout, a successful sign-in elsewhere.
    attacker = Client(REMOTE_ADDR="203.0.113.77", enforce_csrf_checks=False)
    for password in secrets[:2] + ["third wrong secret", PASSWORD]:
        attacker.post("/accounts/sign-in/", {"username": "fac@example.com", "password": password})
    secrets.append("third wrong secret")
    browser = Client(enforce_csrf_checks=True)
    browser.get("/accounts/sign-in/")
    csrf = browser.cookies["csrftoken"].value
    browser.post(
        "/accounts/sign-in/",
        {"username": "fac@example.com", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
    )
    session_key = browser.cookies["sessionid"].value
    browser.get("/")
    csrf = browser.cookies["csrftoken"].value
    # A refused POST with a wrong token, and a refused view.
    browser.post("/incidents/new/", {"csrfmiddlewaretoken": "x" * 64})
    outsider = make_user()
    incident = make_incident(facilitator=facilitator)
    make_participant(incident=incident, user=outsider)
    other = Client()
    other.force_login(outsider)
    other.get(f"/incidents/{incident.pk}/edit/")
    # Signed links: an invitation accepted with a new password, an unsubscribe, a reset.
    browser.post(
        f"/incidents/{incident.pk}/participants/",
        {"email": "new@example.com", "role": "responder", "csrfmiddlewaretoken": csrf},
    )
    invitation = Invitation.objects.get(user__email="new@example.com")
    invitation_token = invitations.token_for(invitation)
    new_password = "the newcomer's own passphrase"
    Client().post(
        f"/accounts/invitation/{invitation_token}/",
        {"new_password1": new_password, "new_password2": "not the same"},
    )
    Client().post(
        f"/accounts/invitation/{invitation_token}/",
        {"new_password1": new_password, "new_password2": new_password},
    )
    secrets.append(new_password)
    unsubscribe_token = preferences.token_for(facilitator, "notify_weekly_digest")
    Client().get(f"/email-preferences/{unsubscribe_token}/")
    Client().post(f"/email-preferences/{unsubscribe_token}/", {"List-Unsubscribe": "One-Click"})
    reset_token = default_token_generator.make_token(outsider)
    uid = urlsafe_base64_encode(force_bytes(outsider.pk))
    Client().get(f"/accounts/password-reset/{uid}/{reset_token}/")
    browser.post("/accounts/sign-out/", {"csrfmiddlewaretoken": csrf})

    written = logs.text()
    assert len(logs.security()) >= 6, logs.security()
    checked = [*secrets, session_key, csrf, invitation_token, unsubscribe_token, reset_token]
    leaked = [secret for secret in checked if secret in written]
    trust_figures(
        "security logging",
        log_records=len(logs.records),
        security_lines=len(logs.security()),
        events=", ".join(sorted({line["event"] for line in logs.security()})),
        secrets_checked=len(checked),
        secrets_leaked=len(leaked),
    )
    assert leaked == []
    # Mail bodies carry signed links; they are not logged either (console backend aside).
    for message in mail.outbox:
        for line in message.body.splitlines():
            if "/invitation/" in line or "/email-preferences/" in line:
                assert line.strip() not in written
