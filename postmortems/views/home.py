from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from postmortems import access
from postmortems.models import Incident


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What needs me now."""
    user = request.user
    recent = access.visible_incidents(user).order_by("-created_at", "-pk")[:5]
    return render(
        request,
        "postmortems/home.html",
        {
            "recent_incidents": recent,
            "can_open_incident": access.can_open_incident(user),
            "incident_count": Incident.objects.count() if user.is_superuser else None,
        },
    )
