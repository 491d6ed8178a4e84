import zoneinfo
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.text import capfirst

from postmortems import links

# How many author colours the timeline has (static/css/timeline.css: .author-mark-0 … -7).
AUTHOR_PALETTE_SIZE = 8


class TimelineEntryQuerySet(models.QuerySet):
    def shared(self) -> "TimelineEntryQuerySet":
        return self.filter(state=TimelineEntry.State.SHARED)

    def visible_to(self, user) -> "TimelineEntryQuerySet":
        """Shared entries, plus the viewer's own drafts. Never anyone else's draft."""
        return self.filter(Q(state=TimelineEntry.State.SHARED) | Q(author=user))

    def drafts(self) -> "TimelineEntryQuerySet":
        return self.filter(state=TimelineEntry.State.DRAFT)


class TimelineEntry(models.Model):
    """One moment of one person's first-person account of an incident."""

    class Kind(models.TextChoices):
        ACTION = "action", "Action"
        OBSERVATION = "observation", "Observation"
        DECISION = "decision", "Decision"
        COMMUNICATION = "communication", "Communication"

    class Basis(models.TextChoices):
        OBSERVED = "observed", "Observed fact"
        RECOLLECTION = "recollection", "Recollection or opinion"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft (only you can see it)"
        SHARED = "shared", "Shared"

    class KeyMoment(models.TextChoices):
        DETECTED = "detected", "Detected"
        MITIGATED = "mitigated", "Mitigated"
        RESOLVED = "resolved", "Resolved"
        DECISION = "decision", "Key decision"

    incident = models.ForeignKey(
        "postmortems.Incident", on_delete=models.CASCADE, related_name="entries"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="timeline_entries"
    )
    occurred_at = models.DateTimeField()
    # The zone the author entered the time in, shown on hover beside the viewer's own.
    occurred_tz = models.CharField(max_length=64, default="UTC")
    is_approximate = models.BooleanField("approximately", default=False)
    action = models.TextField("what I did", blank=True)
    observation = models.TextField("what I saw", blank=True)
    expectation = models.TextField("what I expected", blank=True)
    assumption = models.TextField("what I assumed", blank=True)
    understanding = models.TextField("what I thought was happening", blank=True)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.ACTION)
    evidence_url = models.URLField("evidence link", max_length=500, blank=True)
    basis = models.CharField(max_length=20, choices=Basis, default=Basis.OBSERVED)
    state = models.CharField(max_length=10, choices=State, default=State.DRAFT)
    shared_at = models.DateTimeField(null=True, blank=True)
    # Set by a facilitator; never changes the author's words.
    key_moment = models.CharField(max_length=20, choices=KeyMoment, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TimelineEntryQuerySet.as_manager()

    TEXT_FIELDS = ("action", "observation", "expectation", "assumption", "understanding")
    # The author's words and facts: what a revision keeps. Not state, key moment or version.
    EDITABLE_FIELDS = (
        "occurred_at",
        "occurred_tz",
        "is_approximate",
        *TEXT_FIELDS,
        "kind",
        "evidence_url",
        "basis",
    )

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name_plural = "timeline entries"
        indexes = [
            models.Index(fields=["incident", "state", "occurred_at"]),
            models.Index(fields=["author", "incident"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(action="") | ~Q(observation=""),
                name="entry_has_action_or_observation",
            ),
        ]

    def __str__(self) -> str:
        return (self.action or self.observation)[:60]

    def get_absolute_url(self) -> str:
        return links.object_url("postmortems:entry_detail", self.pk)

    @property
    def is_shared(self) -> bool:
        return self.state == self.State.SHARED

    @property
    def is_draft(self) -> bool:
        return self.state == self.State.DRAFT

    @property
    def author_mark(self) -> int:
        """A stable palette index for the author: the same person has one colour everywhere."""
        return self.author_id % AUTHOR_PALETTE_SIZE

    @property
    def entered_zone(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.occurred_tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def entered_local(self) -> datetime:
        """The moment as the author entered it, in the author's own zone."""
        return self.occurred_at.astimezone(self.entered_zone)

    @property
    def safe_evidence_url(self) -> str:
        """The evidence link, only if it is a web address (never javascript: or data:)."""
        url = self.evidence_url or ""
        return url if url.lower().startswith(("http://", "https://")) else ""

    @property
    def first_person_fields(self) -> list[tuple[str, str]]:
        """(label, words) for each of the five first-person fields the author filled in."""
        return _labelled({name: getattr(self, name) for name in self.TEXT_FIELDS})

    def snapshot(self) -> dict:
        """The editable fields as JSON-safe values, for a revision."""
        data = {name: getattr(self, name) for name in self.EDITABLE_FIELDS}
        data["occurred_at"] = self.occurred_at.isoformat()
        return data

    def share(self, now: datetime | None = None) -> None:
        """Make a draft visible with the incident. Sharing is one-way: words once read stay."""
        if self.is_shared:
            return
        self.state = self.State.SHARED
        self.shared_at = now or timezone.now()
        self.save(update_fields=["state", "shared_at"])


def _labelled(values: dict) -> list[tuple[str, str]]:
    return [
        (capfirst(TimelineEntry._meta.get_field(name).verbose_name), values[name])
        for name in TimelineEntry.TEXT_FIELDS
        if values.get(name)
    ]


class TimelineEntryRevision(models.Model):
    """The words of an entry as they were before one edit by its author."""

    entry = models.ForeignKey(TimelineEntry, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    edited_at = models.DateTimeField(default=timezone.now)
    # The previous values of the entry's editable fields.
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "version"], name="one_revision_per_version"),
        ]

    def __str__(self) -> str:
        return f"Entry {self.entry_id} v{self.version}"

    @property
    def first_person_fields(self) -> list[tuple[str, str]]:
        return _labelled(self.data)

    @property
    def occurred_at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.data["occurred_at"])
        except (KeyError, TypeError, ValueError):
            return None


class ReviewQuestion(models.Model):
    """A question a facilitator attaches to an entry for the review meeting."""

    entry = models.ForeignKey(TimelineEntry, on_delete=models.CASCADE, related_name="questions")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.text[:60]
