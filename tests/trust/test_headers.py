"""Headers, cookies and CSRF on every page: what a browser is told to enforce for us."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from postmortems.models import Participant
from tests.factories import (
    PASSWORD,
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_participant,
    make_postmortem,
    make_review_meeting,
    make_user,
)

pytestmark = pytest.mark.django_db

# The one route that accepts a POST without a CSRF token: RFC 8058's one-click unsubscribe,
# which mail clients send with no cookie and no token. Its signed token is the credential.
CSRF_EXEMPT = {"postmortems:email_preferences"}
ORIGIN = "https://testserver/"


@pytest.fixture
def world():
    """An incident with something on every page: entries, a write-up, a meeting, an item."""
    facilitator = make_user(is_facilitator=True, time_zone="Europe/London")
    participant = make_user(time_zone="Asia/Kolkata")
    incident = make_incident(facilitator=facilitator, resolved_at=timezone.now())
    make_participant(incident=incident, user=participant)
    entry = make_entry(incident=incident, author=participant)
    postmortem = make_postmortem(incident=incident, summary="What happened")
    factor = make_factor(postmortem=postmortem)
    make_review_meeting(
        incident=incident, attendees=[participant], starts_at=timezone.now() + timedelta(days=3)
    )
    item = make_action_item(incident=incident, owner=participant)
    admin = make_user(is_superuser=True, is_staff=True)
    return {
        "facilitator": facilitator,
        "participant": participant,
        "admin": admin,
        "incident": incident,
        "entry": entry,
        "postmortem": postmortem,
        "factor": factor,
        "item": item,
        "participant_row": Participant.objects.get(incident=incident, user=participant),
    }


def participant_pages(w) -> list[str]:
    i, e, a = w["incident"].pk, w["entry"].pk, w["item"].pk
    return [
        "/",
        "/incidents/",
        f"/incidents/{i}/",
        f"/incidents/{i}/my-account/",
        f"/entries/{e}/",
        f"/entries/{e}/edit/",
        f"/incidents/{i}/postmortem/",
        "/action-items/",
        f"/action-items/{a}/",
        "/digest/",
        "/accounts/profile/",
        "/accounts/password/",
    ]


def facilitator_pages(w) -> list[str]:
    i = w["incident"].pk
    return [
        "/incidents/new/",
        f"/incidents/{i}/edit/",
        f"/incidents/{i}/history/",
        f"/incidents/{i}/participants/",
        f"/incidents/{i}/postmortem/edit/",
        f"/incidents/{i}/postmortem/history/",
        f"/incidents/{i}/meeting/",
        f"/incidents/{i}/action-items/new/",
        f"/factors/{w['factor'].pk}/edit/",
        "/accounts/invite/",
    ]


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_safe_headers(response, where: str) -> None:
    csp = csp_directives(response["Content-Security-Policy"])
    for name in ("script-src", "style-src"):
        assert csp[name] == ["'self'"], f"{where}: {name} {csp.get(name)}"
    assert "'unsafe-eval'" not in response["Content-Security-Policy"], where
    assert csp["default-src"] == ["'self'"], where
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["object-src"] == ["'none'"], where
    assert csp["base-uri"] == ["'self'"], where
    assert csp["form-action"] == ["'self'"], where
    hsts = response["Strict-Transport-Security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 60 * 60 * 24 * 365, where
    assert "includeSubDomains" in hsts, where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where
    assert response["X-Frame-Options"] == "DENY", where
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", where


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def assert_nothing_inline(response, where: str) -> None:
    # The CSP would block these; a page that relies on one is broken for everyone.
    html = response.content.decode()
    for pattern in (INLINE_SCRIPT, INLINE_STYLE, INLINE_HANDLER):
        found = pattern.search(html)
        assert found is None, f"{where}: inline {found.group(0)!r}"


def test_every_main_page_carries_the_strict_policy_and_safe_headers(
    client, world, settings, trust_figures
):
    assert settings.DEBUG is False
    checked = []
    client.force_login(world["participant"])
    for url in participant_pages(world):
        response = client.get(url, secure=True)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert_safe_headers(response, url)
        assert_nothing_inline(response, url)
        checked.append(url)
    client.force_login(world["facilitator"])
    for url in facilitator_pages(world):
        response = client.get(url, secure=True)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert_safe_headers(response, url)
        assert_nothing_inline(response, url)
        checked.append(url)
    client.logout()
    response = Client().get("/accounts/sign-in/", secure=True)
    assert response.status_code == 200
    assert_safe_headers(response, "sign-in")
    assert_nothing_inline(response, "sign-in")
    checked.append("/accounts/sign-in/")
    trust_figures("headers", pages_checked=len(checked), pages_failing=0)


def test_downloads_and_errors_carry_the_headers_too(client, world):
    client.force_login(world["participant"])
    pm = world["incident"].pk
    for url, status in (
        (f"/incidents/{pm}/meeting.ics", 200),
        ("/action-items/export.csv", 200),
        ("/incidents/999999/", 404),
    ):
        response = client.get(url, secure=True)
        assert response.status_code == status, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert response["X-Frame-Options"] == "DENY", url
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], url


def test_signing_in_sets_a_secure_http_only_lax_session_cookie(world):
    client = Client()
    client.get("/accounts/sign-in/", secure=True)
    response = client.post(
        "/accounts/sign-in/",
        {"username": world["participant"].email, "password": PASSWORD},
        secure=True,
    )

    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] is True and csrf["samesite"] == "Lax"


# --- CSRF on every route --------------------------------------------------------------------------


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield namespace + (entry.name or "<unnamed>"), prefix + str(entry.pattern)


def _example_values(w) -> dict[str, str]:
    return {
        "incidents/<int:pk>": str(w["incident"].pk),
        "entries/<int:pk>": str(w["entry"].pk),
        "action-items/<int:pk>": str(w["item"].pk),
        "factors/<int:pk>": str(w["factor"].pk),
        "<int:participant_id>": str(w["participant_row"].pk),
    }


# Values for the admin's regular-expression routes and the remaining converters.
GROUP_VALUES = {
    "app_label": "accounts",
    "url": "nowhere",
    "content_type_id": "1",
    "object_id": "1",
    "token": "not-a-real-token",
    "uidb64": "MQ",
    "action": "submit",
}


def example_path(route: str, w) -> str:
    """A concrete path for a route, with real objects where the route names them."""
    for pattern, value in _example_values(w).items():
        route = route.replace(pattern, pattern.split("<")[0] + value)
    # The admin's regular-expression groups first: "(?P<name>...)" holds a "<name>" too.
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: GROUP_VALUES.get(m[1], "1"), route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: GROUP_VALUES.get(m[1], "1"), route)
    route = route.replace("^", "").replace("$", "").replace("\\", "")
    return "/" + route


def test_every_route_refuses_a_post_without_a_csrf_token_but_the_one_click_unsubscribe(
    world, trust_figures
):
    routes = sorted(set(_walk(get_resolver().url_patterns)))
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["admin"])
    refused, accepted = [], {}
    for name, route in routes:
        path = example_path(route, world)
        match = resolve(path)  # a route the walk cannot fill in must fail loudly, not be skipped
        assert (match.namespace + ":" if match.namespace else "") + (
            match.url_name or "<unnamed>"
        ) == name or name.endswith("<unnamed>"), (name, path)
        # A same-origin Referer, so the refusal is for the missing token, not the Referer.
        response = client.post(path, {"anything": "1"}, secure=True, HTTP_REFERER=ORIGIN)
        if response.status_code == 403 and b"CSRF verification failed" in response.content:
            refused.append(name)
        else:
            accepted[name] = response.status_code

    assert set(accepted) == CSRF_EXEMPT, accepted
    # The domain's and the accounts' routes are all there, so nothing was silently left out.
    assert {"accounts:logout", "postmortems:entry_edit", "postmortems:participant_add"} <= set(
        refused
    )
    trust_figures(
        "csrf",
        routes=len(routes),
        refused_without_token=len(refused),
        exempt=", ".join(sorted(accepted)),
    )


def test_the_same_posts_with_a_token_get_past_the_csrf_check(world):
    # The control: the refusals above are the CSRF check, not the views refusing a POST.
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(world["admin"])
    client.get("/", secure=True)
    token = client.cookies["csrftoken"].value
    stopped, errors = [], {}
    for name, route in sorted(set(_walk(get_resolver().url_patterns))):
        if name == "accounts:logout":
            continue  # it would end the session the other posts use
        path = example_path(route, world)
        response = client.post(
            path, {"csrfmiddlewaretoken": token}, secure=True, HTTP_REFERER=ORIGIN
        )
        if response.status_code == 403 and b"CSRF verification failed" in response.content:
            stopped.append(name)
        elif response.status_code >= 500:
            errors[name] = response.status_code

    assert stopped == []
    assert errors == {}
