"""First-person accounts: "my account", entries and their history, annotations, language prompts.

Every view that takes an htmx request answers with a fragment, and the same URL answers a plain
form POST with a redirect, so everything works with JavaScript off.
"""

import copy

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import access, blameless
from ..forms.timeline import KeyMomentForm, ReviewQuestionForm, TimelineEntryForm
from ..kept_pages import kept_page
from ..models import Incident, TimelineEntry
from ..services import timeline as services
from ..timeline import (
    CARD_FIELDS,
    CardMaker,
    bootstrap,
    entry_findings,
    questions_by_entry,
    render_cards,
    viewer_zone,
)

ACCOUNT_PAGE_SIZE = 50
# POST keys that are never text to check, whatever form the language check is posted from.
NOT_TEXT = {"csrfmiddlewaretoken", "field", "intent", "version"}


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _respond(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    response = render(request, template, context)
    # The same URL returns a page or a fragment: caches and the back button must not mix them.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _incident_url(incident: Incident) -> str:
    """The incident page when it exists (another area's route), or home."""
    try:
        return incident.get_absolute_url()
    except NoReverseMatch:
        return reverse("home")


def _account_url(incident: Incident, entry: TimelineEntry | None = None, page: int = 1) -> str:
    url = reverse("postmortems:my_account", args=[incident.pk])
    if page > 1:
        url += f"?page={page}"
    return url + (f"#entry-{entry.pk}" if entry else "")


def _account_incident(request: HttpRequest, pk: int) -> Incident:
    """The incident, if the user may see it (else 404) and write an account in it (else 403)."""
    incident = access.incident_or_404(request.user, pk)
    if not access.can_write_account(request.user, incident):
        raise PermissionDenied
    return incident


def _own_entry(request: HttpRequest, pk: int) -> TimelineEntry:
    """An entry the user may see (else 404) and is the author of (else 403)."""
    entry = get_object_or_404(
        access.visible_entries(request.user).select_related("author", "incident"), pk=pk
    )
    if not access.can_edit_entry(request.user, entry):
        raise PermissionDenied
    return entry


def _own_entries(incident: Incident, user):
    return (
        TimelineEntry.objects.filter(incident=incident, author=user)
        .select_related("author")
        .only(*CARD_FIELDS)
        .order_by("occurred_at", "pk")
    )


def _page_of(entry: TimelineEntry) -> int:
    before = (
        _own_entries(entry.incident, entry.author)
        .filter(
            Q(occurred_at__lt=entry.occurred_at) | Q(occurred_at=entry.occurred_at, pk__lt=entry.pk)
        )
        .count()
    )
    return before // ACCOUNT_PAGE_SIZE + 1


def _card_context(request: HttpRequest, entry: TimelineEntry, *, findings: bool) -> dict:
    """What includes/entry_card.html needs for one entry, for the signed-in viewer."""
    entry.card = CardMaker(request.user, viewer_zone(request))(entry)
    entry.can_edit = entry.card.can_edit
    return {
        "card": entry.card,
        "findings": entry_findings(entry) if findings and entry.can_edit else (),
    }


def _account_context(
    request: HttpRequest,
    incident: Incident,
    form: TimelineEntryForm,
    *,
    page_number: int | str | None = None,
    status: str = "",
    highlight: int | None = None,
) -> dict:
    entries = _own_entries(incident, request.user)
    page = Paginator(entries, ACCOUNT_PAGE_SIZE).get_page(page_number or request.GET.get("page"))
    own = list(page)
    cards = render_cards(
        own,
        CardMaker(request.user, viewer_zone(request)),
        questions_by_entry(own),
        request,
        with_findings=True,
        show_date=True,
        heading_level=3,
        show_questions=True,
        status="",
        hide_annotations=False,
        can_annotate=False,
        highlight=highlight,
    )
    for entry, html in zip(own, cards, strict=True):
        entry.card_html = html
    return {
        "incident": incident,
        "incident_url": _incident_url(incident),
        "form": bootstrap(form),
        "page": page,
        "draft_count": entries.drafts().count(),
        "status": status,
        "highlight": highlight,
    }


def _saved_message(entry: TimelineEntry, *, edited: bool = False) -> str:
    if entry.is_shared:
        message = "Saved and shared." if edited else "Shared."
        message += " Everyone who can see the incident can read it now."
    else:
        message = "Saved as a draft. Only you can see it until you share it."
    if edited:
        message += f" This is version {entry.version}; earlier words are kept in its history."
    if entry_findings(entry):
        message += " Some phrasing may read as hindsight or blame: see the notes on the entry."
    return message


@require_http_methods(["GET", "POST"])
@kept_page
def my_account(request: HttpRequest, pk: int) -> HttpResponse:
    """The signed-in participant's own entries, drafts included, and the form to add one."""
    incident = _account_incident(request, pk)
    zone = request.user.zone
    data = request.POST if request.method == "POST" else None
    form = TimelineEntryForm(data, zone=zone)
    if data is not None and form.is_valid():
        share = request.POST.get("intent") == "share"
        entry = services.add_entry(incident, request.user, form, share=share)
        status = _saved_message(entry)
        page_number = _page_of(entry)
        if _is_htmx(request):
            context = _account_context(
                request,
                incident,
                TimelineEntryForm(zone=zone),
                page_number=page_number,
                status=status,
                highlight=entry.pk,
            )
            return _respond(request, "postmortems/includes/entry_account_panel.html", context)
        messages.success(request, status)
        return redirect(_account_url(incident, entry, page_number))
    context = _account_context(request, incident, form)
    if _is_htmx(request):
        return _respond(request, "postmortems/includes/entry_account_panel.html", context)
    return _respond(request, "postmortems/my_account.html", context)


@require_POST
def account_share_all(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _account_incident(request, pk)
    count = services.share_all_drafts(incident, request.user)
    if count:
        plural = "entry" if count == 1 else "entries"
        messages.success(request, f"Shared {count} {plural}. The whole incident can read them.")
    else:
        messages.info(request, "You had no drafts to share.")
    return redirect(_account_url(incident))


@require_GET
def entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One entry with its history. A draft is its author's alone: anyone else gets a 404."""
    entry = get_object_or_404(
        access.visible_entries(request.user).select_related("author", "incident"), pk=pk
    )
    card = _card_context(request, entry, findings=True)
    can_annotate = access.can_annotate_entry(request.user, entry)
    if _is_htmx(request):
        return _respond(
            request,
            "postmortems/includes/entry_card.html",
            {**card, "show_date": True, "heading_level": 3},
        )
    return _respond(
        request,
        "postmortems/entry_detail.html",
        {
            **card,
            "entry": entry,
            "incident": entry.incident,
            "incident_url": _incident_url(entry.incident),
            "revisions": entry.revisions.all(),
            "questions": entry.questions.select_related("asked_by"),
            "can_annotate": can_annotate,
            "key_moment_form": KeyMomentForm(instance=entry) if can_annotate else None,
            "question_form": ReviewQuestionForm() if can_annotate else None,
        },
    )


def _edit_context(
    request: HttpRequest, entry: TimelineEntry, form: TimelineEntryForm, conflict=None
) -> dict:
    return {
        # In place (htmx), the form replaces the card and posts back into its place.
        "hx_target": f"#entry-{entry.pk}" if _is_htmx(request) else "",
        "entry": entry,
        "incident": entry.incident,
        "incident_url": _incident_url(entry.incident),
        "form": bootstrap(form),
        "conflict": conflict,
    }


@require_http_methods(["GET", "POST"])
def entry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The author edits their words; the previous ones are kept, and a stale save is refused."""
    entry = _own_entry(request, pk)
    zone = request.user.zone
    prefix = f"entry-{entry.pk}"
    template = (
        "postmortems/includes/entry_edit_form.html"
        if _is_htmx(request)
        else "postmortems/entry_edit.html"
    )
    if request.method == "GET":
        form = TimelineEntryForm(instance=copy.copy(entry), zone=zone, prefix=prefix)
        return _respond(request, template, _edit_context(request, entry, form))

    # The form writes posted values onto its instance while validating: give it a copy, so
    # `entry` keeps the saved words for the page around the form.
    form = TimelineEntryForm(request.POST, instance=copy.copy(entry), zone=zone, prefix=prefix)
    conflict = None
    if form.posted_version != entry.version:
        conflict = entry
    elif form.is_valid():
        share = request.POST.get("intent") == "share"
        try:
            saved = services.revise_entry(
                entry, form, expected_version=form.posted_version, share=share
            )
        except services.EntryConflict as error:
            conflict = error.current
        else:
            status = _saved_message(saved, edited=True)
            if _is_htmx(request):
                card = _card_context(request, saved, findings=True)
                return _respond(
                    request,
                    "postmortems/includes/entry_card.html",
                    {**card, "show_date": True, "status": status, "heading_level": 3},
                )
            messages.success(request, status)
            return redirect(saved.get_absolute_url())
    if conflict is not None:
        # Keep every word they typed, and move the form onto the current version so that the
        # next save (after they have merged what they want) goes through.
        data = request.POST.copy()
        data[form.add_prefix("version")] = str(conflict.version)
        form = TimelineEntryForm(data, instance=copy.copy(conflict), zone=zone, prefix=prefix)
        entry = conflict
    return _respond(request, template, _edit_context(request, entry, form, conflict))


@require_http_methods(["GET", "POST"])
def entry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then delete. Only the author may; the page without JavaScript is the question."""
    entry = _own_entry(request, pk)
    incident = entry.incident
    if request.method == "POST":
        services.delete_entry(entry)
        messages.success(request, "Entry deleted, with its history.")
        if access.can_write_account(request.user, incident):
            return redirect(_account_url(incident))
        return redirect(_incident_url(incident))
    return _respond(
        request,
        "postmortems/entry_delete.html",
        {
            **_card_context(request, entry, findings=False),
            "entry": entry,
            "incident": incident,
            "incident_url": _incident_url(incident),
        },
    )


@require_POST
def entry_share(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _own_entry(request, pk)
    entry.share()
    messages.success(request, "Shared. Everyone who can see the incident can read it now.")
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    if access.can_write_account(request.user, entry.incident):
        return redirect(_account_url(entry.incident, entry, _page_of(entry)))
    return redirect(entry.get_absolute_url())


def _annotatable_entry(request: HttpRequest, pk: int) -> TimelineEntry:
    entry = get_object_or_404(
        access.visible_entries(request.user).select_related("author", "incident"), pk=pk
    )
    if not access.can_annotate_entry(request.user, entry):
        raise PermissionDenied
    return entry


def _annotation_page(request: HttpRequest, entry: TimelineEntry, **forms) -> HttpResponse:
    context = {
        **_card_context(request, entry, findings=False),
        "entry": entry,
        "incident": entry.incident,
        "incident_url": _incident_url(entry.incident),
        "revisions": entry.revisions.all(),
        "questions": entry.questions.select_related("asked_by"),
        "can_annotate": True,
        "key_moment_form": KeyMomentForm(instance=entry),
        "question_form": ReviewQuestionForm(),
        **forms,
    }
    return _respond(request, "postmortems/entry_detail.html", context)


@require_POST
def entry_annotate(request: HttpRequest, pk: int) -> HttpResponse:
    """A facilitator marks (or unmarks) a key moment. The author's words are not touched."""
    entry = _annotatable_entry(request, pk)
    form = KeyMomentForm(request.POST, instance=copy.copy(entry))
    if not form.is_valid():
        return _annotation_page(request, entry, key_moment_form=form)
    services.mark_key_moment(entry, form.cleaned_data["key_moment"])
    if entry.key_moment:
        messages.success(request, f"Marked as a key moment: {entry.get_key_moment_display()}.")
    else:
        messages.success(request, "Key-moment mark removed.")
    return redirect(entry.get_absolute_url())


@require_POST
def entry_question_add(request: HttpRequest, pk: int) -> HttpResponse:
    """A facilitator attaches a question for the review meeting to an entry."""
    entry = _annotatable_entry(request, pk)
    form = ReviewQuestionForm(request.POST)
    if not form.is_valid():
        return _annotation_page(request, entry, question_form=form)
    services.add_question(entry, form.cleaned_data["text"], asked_by=request.user)
    messages.success(request, "Question added for the review.")
    return redirect(entry.get_absolute_url() + "#questions")


def _text_to_check(request: HttpRequest) -> str:
    """The text to check: `text`, else the field named by `field` or by htmx's trigger name,
    else every posted value (a whole form, posted from any area)."""
    data = request.POST
    if "text" in data:
        return data["text"]
    for name in (data.get("field"), request.headers.get("HX-Trigger-Name")):
        if name and name in data and name not in NOT_TEXT:
            return data[name]
    return "\n".join(
        value for key, values in data.lists() if key not in NOT_TEXT for value in values
    )


@require_POST
def language_check(request: HttpRequest) -> HttpResponse:
    """Blameless-language prompts for some text, as an HTML fragment. Reads, never writes."""
    text = _text_to_check(request)[: blameless.MAX_CHARS]
    return _respond(
        request,
        "postmortems/includes/language_findings.html",
        {"findings": blameless.check(text), "checked": bool(text.strip())},
    )
