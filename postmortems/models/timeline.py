from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class TimelineEntryQuerySet(models.QuerySet):
    def shared(self) -> "TimelineEntryQuerySet":
        return self.filter(state=TimelineEntry.State.SHARED)

    def visible_to(self, user) -> "TimelineEntryQuerySet":
        """Shared entries, plus the viewer's own drafts. Never anyone else's draft."""
        return self.filter(Q(state=TimelineEntry.State.SHARED) | Q(author=user))


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
        return reverse("postmortems:entry_detail", args=[self.pk])

    @property
    def is_shared(self) -> bool:
        return self.state == self.State.SHARED


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
