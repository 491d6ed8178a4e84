import os

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from tests.conftest import needs
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_healthz_reports_a_working_database(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_healthz_reports_a_broken_database_as_unhealthy(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise connection.Database.OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["database"].startswith("error")


def test_healthz_reports_an_unreachable_broker_as_unhealthy(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")


@override_settings(ALLOWED_HOSTS=["postmortems.example.com"])
def test_a_request_with_an_unknown_host_is_refused(client):
    response = client.get(reverse("accounts:login"), HTTP_HOST="evil.example.net")

    assert response.status_code == 400


def test_pages_carry_a_strict_content_security_policy_and_safe_headers(client):
    client.force_login(make_user())

    response = client.get(reverse("home"))

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_have_a_skip_link_and_landmarks(client):
    client.force_login(make_user())

    html = client.get(reverse("home")).text

    assert 'href="#main"' in html
    assert '<main id="main"' in html
    assert 'aria-label="Main"' in html


def test_healthz_checks_a_configured_redis_broker(client, settings):
    url = os.environ.get("CELERY_BROKER_URL", "")
    needs(url.startswith("redis"), "no Redis broker configured (CELERY_BROKER_URL)")
    settings.CELERY_BROKER_URL = url

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
