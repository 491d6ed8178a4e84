"""The postmortem write-up, its review workflow, the review meeting, and the exports."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postmortems import access, rendering
from postmortems.forms.writeups import FactorForm, MeetingForm, PostmortemForm, TransitionForm
from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Postmortem,
    PostmortemRevision,
    ReviewMeeting,
)
from postmortems.models.writeups import TRANSITIONS
from postmortems.services import writeups as services

ACTION_ITEMS_PER_PAGE = 25
REVISIONS_PER_PAGE = 20


def _incident(request: HttpRequest, pk: int) -> Incident:
    return access.incident_or_404(request.user, pk)


def _postmortem(incident: Incident) -> Postmortem:
    postmortem = get_object_or_404(Postmortem, incident=incident)
    # The same incident object carries the access module's per-request role cache.
    postmortem.incident = incident
    return postmortem


def _editable_postmortem(request: HttpRequest, pk: int) -> Postmortem:
    incident = _incident(request, pk)
    if not access.can_edit_postmortem(request.user, incident):
        raise PermissionDenied
    return _postmortem(incident)


def _posted(request: HttpRequest):
    """The POST data for a form, or None on GET (an empty POST must still be validated)."""
    return request.POST if request.method == "POST" else None


def _language_check_url() -> str:
    try:
        return reverse("postmortems:language_check")
    except NoReverseMatch:
        return ""


def _meeting(incident: Incident) -> ReviewMeeting | None:
    return (
        ReviewMeeting.objects.filter(incident=incident)
        .select_related("organiser")
        .prefetch_related("attendees")
        .first()
    )


# --- The write-up -------------------------------------------------------------------------------


@require_GET
def postmortem_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The write-up as read by everyone who may; its review trail and meeting; the actions."""
    user = request.user
    incident = _incident(request, pk)
    postmortem = Postmortem.objects.filter(incident=incident).first()
    can_edit_writeup = access.can_edit_postmortem(user, incident)
    context = {
        "incident": incident,
        "postmortem": postmortem,
        "can_start": postmortem is None and can_edit_writeup,
        "can_read": False,
        "meeting": _meeting(incident),
        "can_edit_meeting": can_edit_writeup,
        "action_items": Paginator(
            ActionItem.objects.filter(incident=incident).select_related("owner"),
            ACTION_ITEMS_PER_PAGE,
        ).get_page(request.GET.get("items_page")),
    }
    if postmortem is not None:
        postmortem.incident = incident
        can_read = access.can_read_postmortem(user, postmortem)
        context.update(
            can_read=can_read,
            can_edit=can_edit_writeup and postmortem.is_editable,
            can_export=access.can_export_postmortem(user, postmortem),
            can_view_history=access.can_view_postmortem_history(user, postmortem),
            steps=[
                {"action": action, **step._asdict()}
                for action, step in TRANSITIONS.items()
                if postmortem.can_move(action)
                and access.can_transition_postmortem(user, postmortem, action)
            ],
        )
        if can_read:
            context.update(
                sections=[
                    {
                        "name": name,
                        "label": services.SECTION_LABELS[name],
                        "html": rendering.render_markdown(getattr(postmortem, name)),
                    }
                    for name in Postmortem.SECTIONS
                ],
                factors=postmortem.factors.prefetch_related(services.shared_entries_prefetch()),
                transitions=postmortem.transitions.select_related("by"),
            )
    return render(request, "postmortems/postmortem_detail.html", context)


@require_POST
def postmortem_start(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(request, pk)
    if not access.can_edit_postmortem(request.user, incident):
        raise PermissionDenied
    services.start_postmortem(incident, by=request.user)
    return redirect("postmortems:postmortem_edit", pk=incident.pk)


def _render_editor(
    request: HttpRequest,
    postmortem: Postmortem,
    form: PostmortemForm,
    *,
    previews: dict | None = None,
    findings: dict | None = None,
    read_only: bool = False,
    status: int = 200,
) -> HttpResponse:
    sections = [
        {
            "name": name,
            "field": form[name],
            "preview": (previews or {}).get(name),
            "findings": (findings or {}).get(name, []),
        }
        for name in Postmortem.SECTIONS
    ]
    return render(
        request,
        "postmortems/postmortem_edit.html",
        {
            "incident": postmortem.incident,
            "postmortem": postmortem,
            "form": form,
            "sections": sections,
            "is_preview": previews is not None,
            "read_only": read_only,
            "factors": postmortem.factors.prefetch_related(services.shared_entries_prefetch()),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def postmortem_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit the sections; Preview renders without saving; a stale version shows the conflict."""
    postmortem = _editable_postmortem(request, pk)
    if request.method == "GET":
        if not postmortem.is_editable:
            messages.info(request, "This write-up is read-only. Reopen it, with a reason, to edit.")
            return redirect(postmortem)
        form = PostmortemForm(instance=postmortem, language_check_url=_language_check_url())
        findings = services.findings_by_section(postmortem.section_data())
        return _render_editor(request, postmortem, form, findings=findings)

    form = PostmortemForm(
        request.POST,
        instance=Postmortem(pk=postmortem.pk),
        language_check_url=_language_check_url(),
    )
    if not form.is_valid():
        return _render_editor(request, postmortem, form, status=400)
    data = form.section_data()
    findings = services.findings_by_section(data)
    if "preview" in request.POST:
        previews = {name: rendering.render_markdown(text) for name, text in data.items()}
        return _render_editor(request, postmortem, form, previews=previews, findings=findings)
    try:
        saved, changed = services.save_postmortem(
            postmortem, data, base_version=form.cleaned_data["version"], by=request.user
        )
    except services.NotEditable:
        # Keep their words on screen: copying them out is better than losing them.
        messages.error(
            request,
            "This write-up was published or closed while you were editing, so nothing was "
            "saved. Your text is below; reopen the write-up to save it.",
        )
        return _render_editor(request, postmortem, form, read_only=True, status=409)
    except services.EditConflict as conflict:
        current = conflict.current
        current.incident = postmortem.incident
        sections = services.conflict_sections(data, current.section_data(), conflict.base_data)
        shown = {section.name for section in sections}
        return render(
            request,
            "postmortems/postmortem_conflict.html",
            {
                "incident": postmortem.incident,
                "postmortem": current,
                "sections": sections,
                # Sections where both texts agree travel along unseen, so the form is complete.
                "unchanged": [
                    {"name": name, "value": data[name]}
                    for name in Postmortem.SECTIONS
                    if name not in shown
                ],
                "your_version": form.cleaned_data["version"],
            },
            status=409,
        )
    if changed:
        messages.success(request, f"Saved as version {saved.version}.")
    else:
        messages.info(request, "Nothing had changed, so no new version was saved.")
    if "close" in request.POST:
        return redirect(saved)
    return redirect("postmortems:postmortem_edit", pk=postmortem.incident_id)


@require_GET
def postmortem_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every saved version: who, when, which sections changed, with a line diff."""
    incident = _incident(request, pk)
    postmortem = _postmortem(incident)
    if not access.can_view_postmortem_history(request.user, postmortem):
        raise PermissionDenied
    revisions = PostmortemRevision.objects.filter(postmortem=postmortem).select_related("edited_by")
    page = Paginator(revisions, REVISIONS_PER_PAGE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    # One more row, the version before this page's oldest, to diff that one against.
    before = (
        revisions.filter(version__lt=shown[-1].version).order_by("-version").first()
        if shown
        else None
    )
    rows = [
        {
            "revision": revision,
            "changes": services.revision_changes(
                revision, shown[index + 1] if index + 1 < len(shown) else before
            ),
        }
        for index, revision in enumerate(shown)
    ]
    return render(
        request,
        "postmortems/postmortem_history.html",
        {"incident": incident, "postmortem": postmortem, "page": page, "rows": rows},
    )


# --- Review workflow ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def postmortem_transition(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One review step (submit, approve, send back, not required, reopen), with its comment."""
    step = TRANSITIONS.get(action)
    if step is None:
        raise Http404("No such review step.")
    incident = _incident(request, pk)
    postmortem = _postmortem(incident)
    if not access.can_transition_postmortem(request.user, postmortem, action):
        raise PermissionDenied
    if not postmortem.can_move(action):
        messages.error(
            request,
            f"A write-up that is “{postmortem.get_status_display()}” cannot be moved that way; "
            "nothing was changed.",
        )
        return redirect(postmortem)
    form = TransitionForm(_posted(request), needs_comment=step.needs_comment)
    if request.method == "POST" and form.is_valid():
        try:
            services.transition_postmortem(
                postmortem, action, by=request.user, comment=form.cleaned_data["comment"]
            )
        except services.IllegalTransition as refusal:
            messages.error(request, f"{refusal} Nothing was changed.")
        else:
            messages.success(request, f"Done: {step.label.lower()}.")
        return redirect(postmortem)
    return render(
        request,
        "postmortems/postmortem_transition.html",
        {
            "incident": incident,
            "postmortem": postmortem,
            "form": form,
            "step": step,
            "action": action,
        },
        status=400 if form.errors else 200,
    )


# --- Contributing factors -----------------------------------------------------------------------


def _writable_or_redirect(request: HttpRequest, postmortem: Postmortem) -> HttpResponse | None:
    if postmortem.is_editable:
        return None
    messages.error(request, "This write-up is read-only. Reopen it, with a reason, to edit.")
    return redirect(postmortem)


def _factor(request: HttpRequest, pk: int) -> ContributingFactor:
    factor = get_object_or_404(
        ContributingFactor.objects.select_related("postmortem__incident").filter(
            postmortem__incident__in=access.visible_incidents(request.user)
        ),
        pk=pk,
    )
    if not access.can_edit_postmortem(request.user, factor.postmortem.incident):
        raise PermissionDenied
    return factor


@require_http_methods(["GET", "POST"])
def factor_create(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _editable_postmortem(request, pk)
    if refusal := _writable_or_redirect(request, postmortem):
        return refusal
    form = FactorForm(_posted(request), incident=postmortem.incident)
    if form.is_valid():
        services.save_factor(form, postmortem)
        messages.success(request, "Contributing factor added.")
        return redirect(reverse("postmortems:postmortem_detail", args=[pk]) + "#factors")
    return render(
        request,
        "postmortems/factor_form.html",
        {"incident": postmortem.incident, "postmortem": postmortem, "form": form},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def factor_edit(request: HttpRequest, pk: int) -> HttpResponse:
    factor = _factor(request, pk)
    postmortem = factor.postmortem
    if refusal := _writable_or_redirect(request, postmortem):
        return refusal
    form = FactorForm(_posted(request), instance=factor, incident=postmortem.incident)
    if form.is_valid():
        services.save_factor(form, postmortem)
        messages.success(request, "Contributing factor saved.")
        return redirect(postmortem.get_absolute_url() + f"#factor-{factor.pk}")
    return render(
        request,
        "postmortems/factor_form.html",
        {"incident": postmortem.incident, "postmortem": postmortem, "form": form, "factor": factor},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def factor_delete(request: HttpRequest, pk: int) -> HttpResponse:
    factor = _factor(request, pk)
    postmortem = factor.postmortem
    if refusal := _writable_or_redirect(request, postmortem):
        return refusal
    if request.method == "POST":
        factor.delete()
        messages.success(request, "Contributing factor removed.")
        return redirect(postmortem.get_absolute_url() + "#factors")
    return render(
        request,
        "postmortems/factor_confirm_delete.html",
        {"incident": postmortem.incident, "postmortem": postmortem, "factor": factor},
    )


# --- Review meeting -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def meeting_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Set or move the review meeting; attendees get the (updated) invite after saving."""
    incident = _incident(request, pk)
    if not access.can_edit_postmortem(request.user, incident):
        raise PermissionDenied
    meeting = _meeting(incident)
    form = MeetingForm(_posted(request), instance=meeting, incident=incident)
    if form.is_valid():
        services.save_meeting(form, incident, by=request.user)
        messages.success(request, "Review meeting saved; the attendees will get the invite.")
        return redirect(reverse("postmortems:postmortem_detail", args=[incident.pk]) + "#meeting")
    return render(
        request,
        "postmortems/meeting_edit.html",
        {"incident": incident, "meeting": meeting, "form": form},
        status=400 if form.errors else 200,
    )


@require_GET
def meeting_ics(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(request, pk)
    meeting = _meeting(incident)
    if meeting is None:
        raise Http404("No review meeting is set for this incident.")
    meeting.incident = incident
    response = HttpResponse(
        services.meeting_ics(meeting), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{incident.human_id}-review.ics"'
    return response


# --- Export -------------------------------------------------------------------------------------


def _exportable_postmortem(request: HttpRequest, pk: int) -> Postmortem:
    incident = _incident(request, pk)
    postmortem = _postmortem(incident)
    if not access.can_export_postmortem(request.user, postmortem):
        raise PermissionDenied
    return postmortem


@require_GET
def postmortem_export_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _exportable_postmortem(request, pk)
    response = HttpResponse(
        services.export_markdown(postmortem, request), content_type="text/markdown; charset=utf-8"
    )
    filename = services.export_filename(postmortem, "md")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def postmortem_export_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    postmortem = _exportable_postmortem(request, pk)
    pdf = services.export_pdf(services.export_html(postmortem, request))
    response = HttpResponse(pdf, content_type="application/pdf")
    filename = services.export_filename(postmortem, "pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
