from django.urls import path

from ..views import incidents

urlpatterns = [
    path("incidents/", incidents.incident_list, name="incident_list"),
    path("incidents/new/", incidents.incident_create, name="incident_create"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident_detail"),
    path("incidents/<int:pk>/edit/", incidents.incident_edit, name="incident_edit"),
    path("incidents/<int:pk>/history/", incidents.incident_history, name="incident_history"),
    path("incidents/<int:pk>/participants/", incidents.participant_add, name="participant_add"),
    path(
        "incidents/<int:pk>/participants/<int:participant_id>/remove/",
        incidents.participant_remove,
        name="participant_remove",
    ),
]
