"""The ceiling for the benchmark: the project's settings and full middleware, one bare view.

Served by gunicorn exactly like the app (bench/run.sh), with the same signed-in session cookie,
so it pays for what every page pays (session and user lookups, CSRF, CSP, time zone, axes) and
nothing else. Pages are reported as a fraction of its throughput, measured in the same run.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postmortems.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

# This module is its own URLconf; nothing else in the project changes.
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()  # sets Django up, so the URLconf below can import apps


def bare(request: HttpRequest) -> HttpResponse:
    """Touch the user, as every real page does (the session and user queries happen here)."""
    return HttpResponse(f"ok {request.user.pk}", content_type="text/plain")


# The sign-in URLs too, so a request without a session is redirected as in the app.
urlpatterns = [path("", bare), path("accounts/", include("accounts.urls"))]
