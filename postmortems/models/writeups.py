from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class Postmortem(models.Model):
    """The write-up for one incident. `version` guards against lost edits."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"
        NOT_REQUIRED = "not_required", "Not required"

    # The Markdown sections, in the order the page shows them.
    SECTIONS = (
        "summary",
        "impact",
        "narrative",
        "went_well",
        "got_lucky",
        "difficult",
        "learning_points",
        "open_questions",
    )

    incident = models.OneToOneField(
        "postmortems.Incident", on_delete=models.CASCADE, related_name="postmortem"
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    summary = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    narrative = models.TextField(blank=True)
    went_well = models.TextField("what went well / sources of resilience", blank=True)
    got_lucky = models.TextField("where we got lucky", blank=True)
    difficult = models.TextField("what was difficult or surprising", blank=True)
    learning_points = models.TextField(blank=True)
    open_questions = models.TextField(blank=True)
    not_required_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["status", "updated_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="not_required") | ~Q(not_required_reason=""),
                name="postmortem_not_required_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"Postmortem for {self.incident.human_id}"

    def get_absolute_url(self) -> str:
        return reverse("postmortems:postmortem_detail", args=[self.incident_id])

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def is_editable(self) -> bool:
        """Published and not-required write-ups are read-only until reopened."""
        return self.status in (self.Status.DRAFT, self.Status.IN_REVIEW)

    def section_data(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.SECTIONS}

    def can_move(self, action: str) -> bool:
        """Whether the workflow allows `action` from the current status (not who may do it)."""
        step = TRANSITIONS.get(action)
        return step is not None and self.status in step.sources


class Transition(NamedTuple):
    """One workflow step: from which statuses, to which, and whether it needs a reason."""

    sources: tuple[str, ...]
    target: str
    label: str
    needs_comment: bool


# The review workflow (DESIGN.md section 2). Who may take each step lives in access.py.
TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(
        (Postmortem.Status.DRAFT,), Postmortem.Status.IN_REVIEW, "Submit for review", False
    ),
    "approve": Transition(
        (Postmortem.Status.IN_REVIEW,), Postmortem.Status.PUBLISHED, "Approve and publish", False
    ),
    "send_back": Transition(
        (Postmortem.Status.IN_REVIEW,), Postmortem.Status.DRAFT, "Send back to draft", True
    ),
    "not_required": Transition(
        (Postmortem.Status.DRAFT,), Postmortem.Status.NOT_REQUIRED, "Mark as not required", True
    ),
    "reopen": Transition(
        (Postmortem.Status.PUBLISHED, Postmortem.Status.NOT_REQUIRED),
        Postmortem.Status.DRAFT,
        "Reopen",
        True,
    ),
}


class PostmortemRevision(models.Model):
    """The write-up's sections as saved at one version, with who saved them."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    edited_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["postmortem", "version"], name="one_postmortem_revision_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.postmortem} v{self.version}"


class PostmortemTransition(models.Model):
    """One step of the review workflow: who moved the write-up from what to what, and why."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=Postmortem.Status)
    to_status = models.CharField(max_length=20, choices=Postmortem.Status)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class ContributingFactor(models.Model):
    """One of many factors; deliberately there is no single root cause."""

    class Category(models.TextChoices):
        TECHNICAL = "technical", "Technical"
        PROCESS = "process", "Process"
        ORGANISATIONAL = "organisational", "Organisational"
        COMMUNICATION = "communication", "Communication"
        KNOWLEDGE = "knowledge", "Knowledge"
        EXTERNAL = "external", "External"

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="factors")
    category = models.CharField(max_length=20, choices=Category)
    description = models.TextField()
    entries = models.ManyToManyField(
        "postmortems.TimelineEntry", related_name="contributing_factors", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.description[:50]}"

    @property
    def description_html(self) -> str:
        from postmortems.rendering import render_markdown

        return render_markdown(self.description)


class ReviewMeeting(models.Model):
    incident = models.OneToOneField(
        "postmortems.Incident", on_delete=models.CASCADE, related_name="review_meeting"
    )
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField(default=60)
    location = models.CharField("place", max_length=200, blank=True)
    video_url = models.URLField("video link", max_length=500, blank=True)
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="review_meetings", blank=True
    )
    organiser = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    sequence = models.PositiveIntegerField(default=0)  # iCalendar SEQUENCE, bumped on change

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["starts_at"])]

    def __str__(self) -> str:
        return f"Review of {self.incident.human_id}"

    def get_absolute_url(self) -> str:
        return reverse("postmortems:postmortem_detail", args=[self.incident_id]) + "#meeting"

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)
