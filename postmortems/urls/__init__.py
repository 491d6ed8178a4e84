"""The root URLconf. Each area of the domain keeps its routes in a module of its own here."""

from django.contrib import admin
from django.urls import include, path

from ..views import health, home
from . import action_items, incidents, notifications, timeline, writeups

domain_patterns = [
    *incidents.urlpatterns,
    *timeline.urlpatterns,
    *writeups.urlpatterns,
    *action_items.urlpatterns,
    *notifications.urlpatterns,
]

urlpatterns = [
    path("", home.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("", include((domain_patterns, "postmortems"))),
]
