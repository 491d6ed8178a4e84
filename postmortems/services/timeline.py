"""Writes to first-person accounts: add, revise (keeping the old words), share, delete, annotate."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User

from ..forms.timeline import TimelineEntryForm
from ..models import Incident, ReviewQuestion, TimelineEntry, TimelineEntryRevision


class EntryConflict(Exception):
    """The entry changed since the author opened the form; nothing was saved."""

    def __init__(self, current: TimelineEntry):
        super().__init__(f"Entry {current.pk} is at version {current.version}")
        self.current = current


def add_entry(
    incident: Incident, author: User, form: TimelineEntryForm, *, share: bool
) -> TimelineEntry:
    """Save a new entry in the author's account, as a draft or shared at once."""
    entry = form.save(commit=False)
    entry.incident = incident
    entry.author = author
    now = timezone.now()
    entry.created_at = entry.updated_at = now
    entry.state = TimelineEntry.State.SHARED if share else TimelineEntry.State.DRAFT
    entry.shared_at = now if share else None
    entry.save()
    return entry


def revise_entry(
    entry: TimelineEntry, form: TimelineEntryForm, *, expected_version: int | None, share: bool
) -> TimelineEntry:
    """Apply the author's edit, keeping the previous words as a revision.

    Raises EntryConflict when the entry is no longer at `expected_version` (another tab, another
    device): the author's text is not saved and the caller shows both versions.
    """
    try:
        with transaction.atomic():
            # The row lock serialises two saves of one entry; the version check turns the
            # loser into a conflict instead of silently overwriting the winner's words.
            current = TimelineEntry.objects.select_for_update().get(pk=entry.pk)
            if expected_version is None or current.version != expected_version:
                raise EntryConflict(current)
            changes = _changes(current, form)
            if changes:
                TimelineEntryRevision.objects.create(
                    entry=current, version=current.version, data=current.snapshot()
                )
                for name, value in changes.items():
                    setattr(current, name, value)
                current.version += 1
                current.updated_at = timezone.now()
                current.save()
            if share:
                current.share()
    except IntegrityError as error:
        # A revision with this version exists: another save got there first.
        raise EntryConflict(TimelineEntry.objects.get(pk=entry.pk)) from error
    return current


def _changes(current: TimelineEntry, form: TimelineEntryForm) -> dict:
    """The fields whose posted value differs from the stored one."""
    changes = {}
    for name in form.Meta.fields:
        value = form.cleaned_data[name]
        stored = getattr(current, name)
        if name == "occurred_at" and value == stored.replace(second=0, microsecond=0):
            continue  # the form shows minutes; an untouched time keeps its seconds
        if value != stored:
            changes[name] = value
    if "occurred_at" in changes:
        changes["occurred_tz"] = form.zone.key
    return changes


def share_all_drafts(incident: Incident, author: User) -> int:
    """Share every draft of the author's account in one go. Returns how many were shared."""
    return (
        TimelineEntry.objects.filter(incident=incident, author=author)
        .drafts()
        .update(state=TimelineEntry.State.SHARED, shared_at=timezone.now())
    )


def delete_entry(entry: TimelineEntry) -> None:
    """Remove an entry with its history and the review questions attached to it."""
    entry.delete()


def mark_key_moment(entry: TimelineEntry, key_moment: str) -> None:
    """Set (or clear, with "") the key-moment mark. The author's words are untouched."""
    TimelineEntry.objects.filter(pk=entry.pk).update(key_moment=key_moment)
    entry.key_moment = key_moment


def add_question(entry: TimelineEntry, text: str, *, asked_by: User) -> ReviewQuestion:
    return ReviewQuestion.objects.create(entry=entry, text=text, asked_by=asked_by)
