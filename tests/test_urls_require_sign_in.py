"""Every URL sends an anonymous visitor to sign in, except the few that must be public."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db

PUBLIC = {
    "healthz",
    "accounts:login",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "accounts:invitation_accept",
    "postmortems:email_preferences",
}


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django's admin guards itself with its own login page.
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern)


def _example_path(route: str) -> str:
    route = re.sub(r"<int:\w+>", "1", route)
    route = re.sub(r"<(?:str|slug|path):?\w*>", "x", route)
    return "/" + route.lstrip("^").rstrip("$")


def test_every_private_url_redirects_anonymous_visitors_to_sign_in(client):
    login = reverse("accounts:login")
    checked = 0
    for name, route in _patterns():
        if name in PUBLIC:
            continue
        path = _example_path(route)
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code == 302, (name, method, response.status_code)
            assert response["Location"].startswith(login), (name, method)
            checked += 1
    assert checked >= 6


def test_the_public_pages_answer_without_signing_in(client):
    for name in ("accounts:login", "accounts:password_reset", "healthz"):
        assert client.get(reverse(name)).status_code == 200, name
