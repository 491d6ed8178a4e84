from django.urls import path

from ..views import notifications

urlpatterns = [
    path("digest/", notifications.digest_preview, name="digest_preview"),
    path(
        "email-preferences/<str:token>/",
        notifications.email_preferences,
        name="email_preferences",
    ),
]
