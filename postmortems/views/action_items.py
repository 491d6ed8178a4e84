"""Action items: create from an incident, the item page and its changes, the review."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Team, User
from postmortems import access, blameless, fragments, quality
from postmortems.forms.action_items import (
    ActionItemFilterForm,
    ActionItemForm,
    ActionItemUpdateForm,
)
from postmortems.kept_pages import kept_page
from postmortems.models import ActionItem, Incident, Postmortem
from postmortems.services import action_items as services

PAGE_SIZE = 50
# The owner breakdown shows the owners with the most overdue items first; a manager of several
# teams has a hundred owners, and the rest are a click away (?owners=all).
OWNERS_SHOWN = 15


def _people_named_in(incident: Incident, *extra: User | None) -> list[str]:
    """Names the quality prompts recognise in "<name> should …": the incident's people."""
    names = list(
        User.objects.filter(participations__incident=incident).values_list(
            "display_name", flat=True
        )
    )
    return names + [user.display_name for user in extra if user is not None]


@require_http_methods(["GET", "POST"])
def action_item_create(request: HttpRequest, pk: int) -> HttpResponse:
    incident = access.incident_or_404(request.user, pk)
    if not access.can_create_action_item(request.user, incident):
        raise PermissionDenied
    data = request.POST if request.method == "POST" else None
    postmortem = Postmortem.objects.filter(incident=incident).first()
    if postmortem is not None:
        postmortem.incident = incident  # it carries the access module's per-request role cache
    form = ActionItemForm(
        data, incident=incident, show_factors=_may_read_factors(request.user, postmortem)
    )
    if form.is_bound and form.is_valid():
        item = services.create_action_item(form, by=request.user)
        prompts = quality.check_action_item(
            title=item.title,
            description=item.description,
            owner_id=item.owner_id,
            due_on=item.due_on,
            names=_people_named_in(incident, item.owner),
        )
        note = " Have a look at the prompts below before you go." if prompts else ""
        messages.success(request, f"Action item added to {incident.human_id}.{note}")
        return redirect(item)
    prompts, findings = [], []
    if form.is_bound:
        prompts = form.prompts(_people_named_in(incident))
        findings = blameless.check(
            f"{form['title'].value() or ''}\n{form['description'].value() or ''}"
        )
    return render(
        request,
        "postmortems/action_item_form.html",
        {"form": form, "incident": incident, "prompts": prompts, "findings": findings},
    )


def _may_read_factors(user: User, postmortem: Postmortem | None) -> bool:
    """Contributing factors are the write-up's words: for those who may read the write-up."""
    return postmortem is not None and access.can_read_postmortem(user, postmortem)


def _visible_item(request: HttpRequest, pk: int) -> ActionItem:
    items = access.visible_action_items(request.user).with_related()
    return get_object_or_404(items.select_related("created_by"), pk=pk)


def _render_detail(
    request: HttpRequest, item: ActionItem, form: ActionItemUpdateForm | None = None
) -> HttpResponse:
    can_change = access.can_change_action_item(request.user, item)
    if can_change and form is None:
        form = ActionItemUpdateForm(item=item)
    prompts = quality.check_action_item(
        title=item.title,
        description=item.description,
        owner_id=item.owner_id,
        due_on=item.due_on,
        names=_people_named_in(item.incident, item.owner),
    )
    factor = item.contributing_factor
    context = {
        "item": item,
        "incident": item.incident,
        # The factor's words only for those who may read the write-up (it may be a draft).
        "can_read_factor": factor is not None
        and _may_read_factors(
            request.user, Postmortem.objects.filter(pk=factor.postmortem_id).first()
        ),
        "changes": item.changes.select_related("by"),
        "can_change": can_change,
        "form": form if can_change else None,
        "prompts": prompts,
        "findings": blameless.check(f"{item.title}\n{item.description}"),
    }
    return render(request, "postmortems/action_item_detail.html", context)


@require_GET
def action_item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _visible_item(request, pk))


@require_POST
def action_item_update(request: HttpRequest, pk: int) -> HttpResponse:
    item = _visible_item(request, pk)
    if not access.can_change_action_item(request.user, item):
        raise PermissionDenied
    form = ActionItemUpdateForm(request.POST, item=item)
    if not form.is_valid():
        return _render_detail(request, item, form)
    changes = services.change_action_item(
        item,
        by=request.user,
        status=form.cleaned_data["status"],
        owner=form.cleaned_data["owner"],
        due_on=form.cleaned_data["due_on"],
        reason=form.cleaned_data["reason"],
    )
    labels = ", ".join(change.field_label.lower() for change in changes)
    messages.success(request, f"Saved: {labels}. The change is on the item's record below.")
    return redirect(item)


# --- The review across incidents ------------------------------------------------------------------


class CountedPaginator(Paginator):
    """A paginator told its count, which the review already has from its figures query."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count  # fills the cached property: no COUNT query


def _review(request: HttpRequest):
    """The filters, the counts' scope and the list's own filters, shared with the CSV."""
    user = request.user
    managed_team_ids = access.managed_team_ids(user)
    may_review = access.can_review_action_items(user)
    filters = ActionItemFilterForm(
        request.GET,
        teams=Team.objects.values_list("pk", "name"),
        is_manager=bool(managed_team_ids),
        may_review=may_review,
        auto_id="filter-%s",
    )
    scope = services.review_scope(
        user, filters, managed_team_ids=managed_team_ids, may_review=may_review
    )
    narrowed = services.narrowing(filters, timezone.localdate())
    return filters, scope, narrowed, may_review


@require_GET
@kept_page
def action_item_review(request: HttpRequest) -> HttpResponse:
    filters, scope, narrowed, may_review = _review(request)
    today, now = timezone.localdate(), timezone.now()
    figures = services.review_figures(scope, filters, today, now)
    items = services.sort(scope.filter(narrowed), filters.value("sort"))
    paginator = CountedPaginator(services.review_rows(items), PAGE_SIZE, count=figures.listed)
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    owner_rows = figures.owner_rows if may_review else []
    all_owners = request.GET.get("owners") == "all"
    context = {
        "filters": filters,
        "ignored_filters": filters.ignored(),
        "page_obj": page,
        "rows_html": fragments.action_item_rows(
            services.with_owner_names(page.object_list, figures.owner_names),
            today,
            services.review_row_items,
        ),
        "page_range": page.paginator.get_elided_page_range(page.number),
        "counts": figures.counts,
        "owner_rows": owner_rows if all_owners else owner_rows[:OWNERS_SHOWN],
        "owner_total": len(owner_rows),
        "all_owners": all_owners,
        "owners_shown": OWNERS_SHOWN,
        "team_rows": figures.team_rows,
        "may_review": may_review,
        "sort": filters.value("sort", services.DEFAULT_SORT),
        "today": today,
        # The breakdowns' links: these filters with another owner or team, back on page 1.
        "owner_query": _query_without(request, "owner", "page"),
        "team_query": _query_without(request, "team", "page"),
        "owners_query": _query_without(request, "owners"),
    }
    context["filters_html"] = fragments.review_filters(context)
    context["breakdown_html"] = fragments.review_breakdown(context)
    return render(request, "postmortems/action_item_review.html", context)


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@require_GET
def action_item_export_csv(request: HttpRequest) -> HttpResponse:
    filters, scope, narrowed, _may_review = _review(request)
    items = services.sort(scope.filter(narrowed), filters.value("sort"))
    today = timezone.localdate()
    response = StreamingHttpResponse(
        services.csv_rows(items, today, timezone.get_current_timezone()),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="action-items-{today:%Y-%m-%d}.csv"'
    return response
