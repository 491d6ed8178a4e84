"""Incidents and their participants: the facilitator's side."""

from collections import Counter

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from postmortems import access, fragments, pagination, timeline
from postmortems.forms.incidents import IncidentFilterForm, IncidentForm, ParticipantForm
from postmortems.kept_pages import kept_page
from postmortems.models import Incident, Participant
from postmortems.models.incidents import add_service_names
from postmortems.services import incidents as services

PER_PAGE = 25
# The list says "more than 100" rather than count every matching incident on each view: a filter
# on a busy service checked each of its 3,108 incidents, half the page's time. The exact count is
# a click away (?count=all).
COUNT_LIMIT = 100


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _page(request: HttpRequest, items, per_page: int = PER_PAGE):
    """The requested page; a page number that is not one falls back to the nearest real page."""
    paginator = Paginator(items, per_page)
    try:
        number = int(request.GET.get("page", 1))
    except (TypeError, ValueError):
        number = 1
    return paginator.get_page(min(max(number, 1), paginator.num_pages))


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    for name in ("page", "after", "before", "count"):
        query.pop(name, None)
    return query.urlencode()


@require_GET
@kept_page
def incident_list(request: HttpRequest) -> HttpResponse:
    """Incidents the viewer may see, filtered, searched, sorted and paged by keyset."""
    form = IncidentFilterForm(request.GET, tz=request.user.zone)
    incidents = form.filter(access.visible_incidents(request.user))
    # Newer/older links rather than page numbers: page 2,000 costs what page 1 does.
    page = pagination.paginate(
        incidents.for_list(),
        form.ordering(),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        per_page=PER_PAGE,
    )
    exact = request.GET.get("count") == "all"
    count, more = pagination.capped_count(incidents, None if exact else COUNT_LIMIT)
    previous_label, next_label = form.page_labels()
    return render(
        request,
        "postmortems/incident_list.html",
        {
            "form": form,
            "page_obj": page,
            "incidents": page.object_list,
            "rows_html": fragments.incident_rows(add_service_names(page.object_list)),
            "count": count,
            "count_is_capped": more,
            "previous_label": previous_label,
            "next_label": next_label,
            "query": _query_without_page(request),
            "can_open_incident": access.can_open_incident(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
def incident_create(request: HttpRequest) -> HttpResponse:
    if not access.can_open_incident(request.user):
        raise PermissionDenied
    form = IncidentForm(request.POST or None, tz=request.user.zone)
    if form.is_valid():
        incident = services.open_incident(form=form, by=request.user)
        messages.success(
            request, f"{incident.human_id} is open. Now add the people who were involved."
        )
        return redirect(incident.get_absolute_url() + "#participants")
    return render(request, "postmortems/incident_form.html", {"form": form, "incident": None})


def _participants(incident: Incident, marks: list[tuple]) -> list[Participant]:
    """The people on the incident, with what participant_section.html shows of them: each
    one's `shared_count` comes from the shared entries' marks (timeline.shared_marks), which
    the incident page reads for its timeline anyway."""
    shared = Counter(author_id for *_, author_id in marks)
    participants = list(
        incident.participants.select_related("user")
        .only("incident", "role", "user__display_name", "user__email", "user__is_active")
        .order_by("added_at", "pk")
    )
    for participant in participants:
        participant.shared_count = shared[participant.user_id]
    return participants


def _participants_context(
    request: HttpRequest,
    incident: Incident,
    *,
    form: ParticipantForm | None = None,
    marks: list[tuple] | None = None,
) -> dict:
    """What the participants section needs, on the incident page and as an htmx fragment."""
    if marks is None:
        marks = timeline.shared_marks(incident)
    participants = _participants(incident, marks)
    can_edit = access.can_edit_incident(request.user, incident)
    if can_edit and form is None:
        form = ParticipantForm(incident=incident)
    return {
        "incident": incident,
        "participants": participants,
        "participant_form": form,
        "can_edit": can_edit,
    }


@require_GET
@kept_page
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = access.incident_or_404(
        request.user, pk, Incident.objects.select_related("created_by").prefetch_related("services")
    )
    user = request.user
    action_items = list(incident.action_items.for_incident_rows())
    marks = timeline.shared_marks(incident)
    context = {
        **_participants_context(request, incident, marks=marks),
        "key_moments": incident.key_moments(),
        "is_participant": access.is_participant(user, incident),
        "can_create_action_item": access.can_create_action_item(user, incident),
        "action_items": action_items,
        "action_item_rows_html": fragments.incident_action_item_rows(
            action_items, timezone.localdate()
        ),
        "timeline_html": fragments.slot(),
    }
    timeline_html = timeline.merged_timeline_html(request, incident, marks)
    return fragments.fill(
        render(request, "postmortems/incident_detail.html", context), timeline_html
    )


@require_http_methods(["GET", "POST"])
def incident_edit(request: HttpRequest, pk: int) -> HttpResponse:
    incident = access.incident_or_404(request.user, pk)
    if not access.can_edit_incident(request.user, incident):
        raise PermissionDenied
    form = IncidentForm(request.POST or None, instance=incident, tz=request.user.zone)
    if form.is_valid():
        change = services.update_incident(incident, form=form, by=request.user)
        if change is None:
            messages.info(request, "Nothing changed.")
        else:
            messages.success(request, f"{incident.human_id} is saved.")
        return redirect(incident)
    return render(request, "postmortems/incident_form.html", {"form": form, "incident": incident})


@require_GET
def incident_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every recorded change to the incident's fields and people, newest first."""
    incident = access.incident_or_404(
        request.user, pk, Incident.objects.select_related("created_by")
    )
    if not access.can_edit_incident(request.user, incident):
        raise PermissionDenied
    page = _page(request, incident.changes.select_related("changed_by"))
    labels = _field_labels()
    for change in page.object_list:
        change.rows = [
            {"label": labels.get(name, name), "old": values[0], "new": values[1]}
            for name, values in change.changes.items()
        ]
    return render(
        request,
        "postmortems/incident_history.html",
        {"incident": incident, "page_obj": page, "changes": page.object_list},
    )


def _field_labels() -> dict[str, str]:
    form = IncidentForm()
    labels = {name: str(form.fields[name].label) for name in services.TRACKED_FIELDS}
    labels["participants"] = "Participants"
    return labels


@require_http_methods(["GET", "POST"])
def participant_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a person with a role. Works as a page, and as an htmx fragment on the incident page."""
    incident = access.incident_or_404(request.user, pk)
    if not access.can_edit_incident(request.user, incident):
        raise PermissionDenied
    form = ParticipantForm(request.POST or None, incident=incident)
    added = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            added = services.add_participant(
                incident,
                user=data["user"],
                email=data["email"],
                display_name=data["display_name"],
                role=data["role"],
                by=request.user,
            )
        except services.AlreadyParticipant as exc:
            form.add_error(None, str(exc))
        else:
            if not _is_htmx(request):
                messages.success(
                    request,
                    f"{added.user.name} is added as {added.get_role_display().lower()}.",
                )
                return redirect(incident.get_absolute_url() + "#participants")
            form = None  # A fresh form for the next person.
    context = _participants_context(request, incident, form=form)
    context["added"] = added
    if _is_htmx(request):
        return render(request, "postmortems/includes/participant_section.html", context)
    return render(request, "postmortems/incident_participants.html", context)


@require_http_methods(["GET", "POST"])
def participant_remove(request: HttpRequest, pk: int, participant_id: int) -> HttpResponse:
    """Ask, then remove. Refused for the last facilitator and for anyone who has written."""
    incident = access.incident_or_404(request.user, pk)
    if not access.can_edit_incident(request.user, incident):
        raise PermissionDenied
    participant = get_object_or_404(
        Participant.objects.select_related("user"), pk=participant_id, incident=incident
    )
    if request.method == "POST":
        try:
            services.remove_participant(participant, by=request.user)
        except services.CannotRemove as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"{participant.user.name} is no longer on {incident.human_id}."
            )
            # Someone who removed themselves from a restricted incident can no longer see it.
            if not access.visible_incidents(request.user).filter(pk=incident.pk).exists():
                return redirect("postmortems:incident_list")
        return redirect(incident.get_absolute_url() + "#participants")
    return render(
        request,
        "postmortems/incident_participant_remove.html",
        {
            "incident": incident,
            "participant": participant,
            "blocker": services.removal_blocker(participant),
        },
    )
