from django.urls import path

from ..views import writeups

urlpatterns = [
    path("incidents/<int:pk>/postmortem/", writeups.postmortem_detail, name="postmortem_detail"),
    path(
        "incidents/<int:pk>/postmortem/start/",
        writeups.postmortem_start,
        name="postmortem_start",
    ),
    path("incidents/<int:pk>/postmortem/edit/", writeups.postmortem_edit, name="postmortem_edit"),
    path(
        "incidents/<int:pk>/postmortem/history/",
        writeups.postmortem_history,
        name="postmortem_history",
    ),
    path(
        "incidents/<int:pk>/postmortem/review/<slug:action>/",
        writeups.postmortem_transition,
        name="postmortem_transition",
    ),
    path(
        "incidents/<int:pk>/postmortem/export.md",
        writeups.postmortem_export_markdown,
        name="postmortem_export_markdown",
    ),
    path(
        "incidents/<int:pk>/postmortem/export.pdf",
        writeups.postmortem_export_pdf,
        name="postmortem_export_pdf",
    ),
    path(
        "incidents/<int:pk>/postmortem/factors/new/",
        writeups.factor_create,
        name="factor_create",
    ),
    path("factors/<int:pk>/edit/", writeups.factor_edit, name="factor_edit"),
    path("factors/<int:pk>/delete/", writeups.factor_delete, name="factor_delete"),
    path("incidents/<int:pk>/meeting/", writeups.meeting_edit, name="meeting_edit"),
    path("incidents/<int:pk>/meeting.ics", writeups.meeting_ics, name="meeting_ics"),
]
