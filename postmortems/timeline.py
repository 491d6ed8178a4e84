"""The merged timeline of an incident. Interface fixed; filled in by the timeline work."""

from django.http import HttpRequest

from .models import Incident


def merged_timeline_context(request: HttpRequest, incident: Incident) -> dict:
    """Context for templates/postmortems/includes/merged_timeline.html."""
    return {}
