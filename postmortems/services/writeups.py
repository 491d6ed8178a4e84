"""Writes of the postmortem area: starting, saving (no lost edits), the review workflow, the
review meeting and its calendar invite, and the exports."""

import difflib
import mimetypes
import os
import posixpath
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils._os import safe_join
from django.utils.text import capfirst

from accounts.models import User
from postmortems import blameless, rendering, tasks
from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Postmortem,
    PostmortemRevision,
    PostmortemTransition,
    ReviewMeeting,
    TimelineEntry,
)
from postmortems.models.writeups import TRANSITIONS

SECTION_LABELS = {
    "summary": "Summary",
    "impact": "Impact",
    "narrative": "Narrative",
    "went_well": "What went well / sources of resilience",
    "got_lucky": "Where we got lucky",
    "difficult": "What was difficult or surprising",
    "learning_points": "Learning points",
    "open_questions": "Open questions",
}

# Short guiding prompts. They are Markdown comments, so they never show in the page, the PDF or
# the Markdown export: the author reads them while writing and writes over them.
SECTION_PROMPTS = {
    "summary": "In two or three sentences: what happened, who noticed, and how it ended.",
    "impact": "Who and what was affected, for how long, and how we know (numbers, dashboards).",
    "narrative": (
        "Tell the story from the accounts; what did people know, expect and assume at each "
        "point? Judge decisions by what was known then, not by what we know now."
    ),
    "went_well": (
        "What helped? Which people, practices or tools absorbed the surprise and kept it "
        "from getting worse?"
    ),
    "got_lucky": "What went our way by chance, and would not next time?",
    "difficult": "What was hard to see, understand or do? What surprised the people involved?",
    "learning_points": "What do we understand now that we did not before?",
    "open_questions": "What do we still not know? Who could help us find out?",
}


def section_template() -> dict[str, str]:
    return {name: f"<!-- {prompt} -->\n" for name, prompt in SECTION_PROMPTS.items()}


# --- Starting and saving ------------------------------------------------------------------------


def start_postmortem(incident: Incident, *, by: User) -> Postmortem:
    """Create the write-up from the template (version 1, recorded); an existing one is returned."""
    existing = Postmortem.objects.filter(incident=incident).first()
    if existing:
        return existing
    now = timezone.now()
    data = section_template()
    try:
        with transaction.atomic():
            postmortem = Postmortem.objects.create(
                incident=incident,
                created_by=by,
                updated_by=by,
                created_at=now,
                updated_at=now,
                **data,
            )
            PostmortemRevision.objects.create(
                postmortem=postmortem, version=1, edited_by=by, edited_at=now, data=data
            )
    except IntegrityError:
        # Two editors pressed "Start" at once: the other one won, use theirs.
        return Postmortem.objects.get(incident=incident)
    return postmortem


class EditConflict(Exception):
    """Someone saved a newer version since the editor loaded the form."""

    def __init__(self, current: Postmortem, base_data: dict[str, str] | None):
        super().__init__(f"postmortem {current.pk} is at version {current.version}")
        self.current = current
        self.base_data = base_data


class NotEditable(Exception):
    """The write-up was published or marked not required; it is read-only until reopened."""


def save_postmortem(
    postmortem: Postmortem, data: dict[str, str], *, base_version: int, by: User
) -> tuple[Postmortem, list[str]]:
    """Save the sections if nobody saved since `base_version`; return it and what changed.

    Raises EditConflict (nothing saved) when the version moved on, NotEditable when the status
    no longer allows edits. Saving with no change creates no version.
    """
    with transaction.atomic():
        current = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
        if not current.is_editable:
            raise NotEditable
        if current.version != base_version:
            base = PostmortemRevision.objects.filter(
                postmortem=current, version=base_version
            ).first()
            raise EditConflict(current, base.data if base else None)
        changed = [name for name in Postmortem.SECTIONS if getattr(current, name) != data[name]]
        if not changed:
            return current, []
        now = timezone.now()
        for name in Postmortem.SECTIONS:
            setattr(current, name, data[name])
        current.version += 1
        current.updated_by = by
        current.updated_at = now
        current.save(update_fields=[*Postmortem.SECTIONS, "version", "updated_by", "updated_at"])
        PostmortemRevision.objects.create(
            postmortem=current,
            version=current.version,
            edited_by=by,
            edited_at=now,
            data=current.section_data(),
        )
    return current, changed


@dataclass(frozen=True)
class ConflictSection:
    name: str
    label: str
    mine: str
    current: str
    # "both": both changed it; "mine": only the editor did; "theirs": only the other person did.
    kind: str

    @property
    def current_html(self) -> str:
        return rendering.render_markdown(self.current)


def conflict_sections(
    mine: dict[str, str], current: dict[str, str], base: dict[str, str] | None
) -> list[ConflictSection]:
    """Every section where the editor's text and the saved text differ, and who changed it."""
    sections = []
    for name in Postmortem.SECTIONS:
        if mine[name] == current[name]:
            continue
        if base is not None and mine[name] == base.get(name):
            kind = "theirs"
        elif base is not None and current[name] == base.get(name):
            kind = "mine"
        else:
            kind = "both"
        sections.append(
            ConflictSection(name, SECTION_LABELS[name], mine[name], current[name], kind)
        )
    return sections


def findings_by_section(data: dict[str, str]) -> dict[str, list]:
    """Blameless-language prompts for each section that has any."""
    found = {}
    for name in Postmortem.SECTIONS:
        findings = blameless.check(data.get(name) or "")
        if findings:
            found[name] = findings
    return found


def save_factor(form, postmortem: Postmortem) -> ContributingFactor:
    """Save a contributing factor and its links to timeline entries together."""
    with transaction.atomic():
        factor = form.save(commit=False)
        factor.postmortem = postmortem
        factor.save()
        form.save_m2m()
    return factor


# --- History ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionChange:
    name: str
    label: str
    diff: str


def revision_changes(
    revision: PostmortemRevision, previous: PostmortemRevision | None
) -> list[SectionChange]:
    """Sections this revision changed against the one before, each with a unified diff."""
    if previous is None:
        return []
    changes = []
    for name in Postmortem.SECTIONS:
        before, after = previous.data.get(name, ""), revision.data.get(name, "")
        if before == after:
            continue
        diff = difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            fromfile=f"v{previous.version}",
            tofile=f"v{revision.version}",
            lineterm="",
        )
        changes.append(SectionChange(name, SECTION_LABELS[name], "\n".join(diff)))
    return changes


# --- Review workflow ----------------------------------------------------------------------------


class IllegalTransition(Exception):
    """The workflow does not allow this step from the current status."""


def transition_postmortem(
    postmortem: Postmortem, action: str, *, by: User, comment: str = ""
) -> Postmortem:
    """Move the write-up one step and record who, when and why. Nothing changes on refusal."""
    step = TRANSITIONS.get(action)
    if step is None:
        raise IllegalTransition(f"Unknown step “{action}”.")
    comment = comment.strip()
    if step.needs_comment and not comment:
        raise IllegalTransition("This step needs a reason.")
    with transaction.atomic():
        current = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
        if not current.can_move(action):
            raise IllegalTransition(
                f"A write-up that is “{current.get_status_display()}” cannot be moved that way."
            )
        now = timezone.now()
        previous = current.status
        current.status = step.target
        if action == "submit":
            current.submitted_at = now
        elif action == "approve":
            current.published_at = now
        elif action == "send_back":
            current.submitted_at = None
        elif action == "not_required":
            current.not_required_reason = comment
        elif action == "reopen":
            current.submitted_at = None
            current.published_at = None
            current.not_required_reason = ""
        current.save(
            update_fields=["status", "submitted_at", "published_at", "not_required_reason"]
        )
        PostmortemTransition.objects.create(
            postmortem=current,
            from_status=previous,
            to_status=step.target,
            by=by,
            at=now,
            comment=comment,
        )
    return current


# --- Review meeting -----------------------------------------------------------------------------


def save_meeting(form, incident: Incident, *, by: User) -> ReviewMeeting:
    """Save the meeting from a valid MeetingForm and send the (updated) invite after commit."""
    with transaction.atomic():
        meeting = form.save(commit=False)
        if meeting.pk is None:
            meeting.incident = incident
            meeting.organiser = by
        else:
            # Calendar clients replace an event only when its SEQUENCE grows.
            meeting.sequence += 1
        meeting.save()
        form.save_m2m()
        tasks.send_meeting_invite.delay_on_commit(meeting.pk)
    return meeting


def _site_host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def absolute_url(path: str) -> str:
    return settings.SITE_URL + path


def incident_url(incident: Incident) -> str:
    """The incident page, absolute; built by hand while that page's route does not exist yet."""
    try:
        path = incident.get_absolute_url()
    except NoReverseMatch:
        path = f"/incidents/{incident.pk}/"
    return absolute_url(path)


def _calendar_name(user: User) -> str:
    # A display name ends up in a quoted parameter, where quotes and control characters break it.
    return "".join(ch for ch in user.name if ch != '"' and ch.isprintable()) or user.email


def meeting_ics(meeting: ReviewMeeting, *, method: str = "REQUEST") -> bytes:
    """The review meeting as an iCalendar invite; the UID stays the same across updates."""
    from icalendar import Calendar, Event, vCalAddress, vText

    incident = meeting.incident
    link = incident_url(incident)
    calendar = Calendar()
    calendar.add("prodid", f"-//{settings.SITE_NAME}//Postmortem review//EN")
    calendar.add("version", "2.0")
    if method:
        calendar.add("method", method)

    event = Event()
    event.add("uid", f"meeting-{meeting.pk}@{_site_host()}")
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", meeting.starts_at.astimezone(UTC))
    event.add("dtend", meeting.ends_at.astimezone(UTC))
    event.add("summary", f"Postmortem review: {incident.human_id} {incident.title}")
    event.add("sequence", meeting.sequence)
    location = meeting.location or meeting.video_url
    if location:
        event.add("location", location)
    event.add("url", meeting.video_url or link)
    description = [f"Review of {incident.human_id}: {incident.title}", f"Incident: {link}"]
    if meeting.video_url:
        description.append(f"Video: {meeting.video_url}")
    event.add("description", "\n".join(description))

    organiser = vCalAddress(f"mailto:{meeting.organiser.email}")
    organiser.params["cn"] = vText(_calendar_name(meeting.organiser))
    event.add("organizer", organiser)
    for person in meeting.attendees.all():
        attendee = vCalAddress(f"mailto:{person.email}")
        attendee.params["cn"] = vText(_calendar_name(person))
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("NEEDS-ACTION")
        attendee.params["rsvp"] = vText("TRUE")
        event.add("attendee", attendee, encode=0)
    calendar.add_component(event)
    return calendar.to_ical()


# --- Export -------------------------------------------------------------------------------------


def export_filename(postmortem: Postmortem, extension: str) -> str:
    return f"{postmortem.incident.human_id}-postmortem.{extension}"


def export_context(postmortem: Postmortem) -> dict:
    """Everything an export shows: sections, factors, SHARED entries only, action items."""
    incident = postmortem.incident
    entries = list(
        TimelineEntry.objects.filter(incident=incident, state=TimelineEntry.State.SHARED)
        .select_related("author")
        .order_by("occurred_at", "pk")
    )
    factors = list(
        ContributingFactor.objects.filter(postmortem=postmortem).prefetch_related(
            shared_entries_prefetch()
        )
    )
    action_items = list(
        ActionItem.objects.filter(incident=incident)
        .select_related("owner")
        .order_by("due_on", "pk")
    )
    sections = [
        {
            "name": name,
            "label": SECTION_LABELS[name],
            "text": getattr(postmortem, name),
            "html": rendering.render_markdown(getattr(postmortem, name)),
            "markdown": rendering.markdown_for_export(getattr(postmortem, name)),
        }
        for name in Postmortem.SECTIONS
    ]
    return {
        "postmortem": postmortem,
        "incident": incident,
        "incident_url": incident_url(incident),
        "sections": sections,
        "factors": factors,
        "entries": entries,
        "action_items": action_items,
        "generated_at": timezone.now(),
    }


def shared_entries_prefetch() -> Prefetch:
    """A factor's linked entries, shared ones only, with their authors (as `shared_entries`)."""
    # A factor only ever shows shared entries, even if one were linked while shared and later
    # hidden again: a draft is its author's alone.
    return Prefetch(
        "entries",
        queryset=TimelineEntry.objects.filter(state=TimelineEntry.State.SHARED)
        .select_related("author")
        .order_by("occurred_at", "pk"),
        to_attr="shared_entries",
    )


def export_markdown(postmortem: Postmortem, request: HttpRequest | None = None) -> str:
    """The write-up as one Markdown document, every piece of user text escaped for Markdown."""
    context = export_context(postmortem)
    context["md"] = {
        "title": rendering.escape_markdown(
            f"{postmortem.incident.human_id} {postmortem.incident.title}"
        ),
        "factors": [
            {
                "category": factor.get_category_display(),
                "description": rendering.markdown_for_export(factor.description),
                "entries": [
                    {
                        "entry": entry,
                        "author": rendering.escape_markdown(entry.author.name),
                        "text": rendering.escape_markdown(str(entry)),
                    }
                    for entry in factor.shared_entries
                ],
            }
            for factor in context["factors"]
        ],
        "entries": [
            {
                "entry": entry,
                "author": rendering.escape_markdown(entry.author.name),
                "fields": [
                    (
                        capfirst(TimelineEntry._meta.get_field(name).verbose_name),
                        rendering.escape_markdown_block(getattr(entry, name)),
                    )
                    for name in TimelineEntry.TEXT_FIELDS
                    if getattr(entry, name)
                ],
            }
            for entry in context["entries"]
        ],
        "action_items": [
            {
                "item": item,
                "title": rendering.escape_markdown(item.title),
                "owner": rendering.escape_markdown(item.owner.name if item.owner else "—"),
            }
            for item in context["action_items"]
        ],
    }
    return render_to_string("postmortems/export/postmortem.md", context, request=request)


def export_html(postmortem: Postmortem, request: HttpRequest | None = None) -> str:
    """The HTML that WeasyPrint turns into the PDF (tests read it to check what is in it)."""
    return render_to_string(
        "postmortems/export/postmortem_pdf.html", export_context(postmortem), request=request
    )


def _static_prefix() -> str:
    if urlsplit(settings.STATIC_URL).scheme:
        return settings.STATIC_URL  # static files on their own host
    return settings.SITE_URL + "/" + settings.STATIC_URL.lstrip("/")


def _static_fetcher_class():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):
        """Serves this app's static files from disk and refuses every other URL.

        An external URL in the HTML would stall the export (no internet here) or leak it to a
        third party; a `file:` URL could read the server's disk.
        """

        def __init__(self):
            super().__init__(allowed_protocols=())
            self.refused: list[str] = []
            self.served: list[str] = []

        def fetch(self, url, headers=None):
            path = static_path(url)
            if path is None:
                self.refused.append(url)
                raise ValueError(f"Refused to fetch {url!r}: only static files are served.")
            with open(path, "rb") as handle:
                body = handle.read()
            self.served.append(url)
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return URLFetcherResponse(url, body, {"Content-Type": content_type})

    return StaticOnlyFetcher


def static_path(url: str) -> str | None:
    """The local file behind a static URL of this site, or None for anything else."""
    prefix = _static_prefix()
    if not url.startswith(prefix):
        return None
    relative = unquote(urlsplit(url[len(prefix) :]).path)
    normalised = posixpath.normpath(relative)
    if normalised.startswith(("..", "/")) or "\\" in relative or "\x00" in relative:
        return None
    found = finders.find(normalised)
    if found:
        return found
    # In production `{% static %}` names the hashed copy, which only exists in STATIC_ROOT.
    if settings.STATIC_ROOT:
        try:
            candidate = safe_join(str(settings.STATIC_ROOT), normalised)
        except SuspiciousFileOperation:
            return None
        if os.path.isfile(candidate):
            return candidate
    return None


def static_fetcher():
    return _static_fetcher_class()()


def export_pdf(html: str, fetcher=None) -> bytes:
    """Render the export HTML to PDF; only static files are fetched (see StaticOnlyFetcher)."""
    from weasyprint import HTML

    fetcher = fetcher or static_fetcher()
    return HTML(string=html, base_url=settings.SITE_URL + "/", url_fetcher=fetcher).write_pdf()
