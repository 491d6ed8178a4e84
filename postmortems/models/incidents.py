from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Service(models.Model):
    """An affected service or tag, e.g. "checkout-api"."""

    name = models.CharField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IncidentQuerySet(models.QuerySet):
    def involving(self, user) -> "IncidentQuerySet":
        return self.filter(participants__user=user)


class Incident(models.Model):
    class Severity(models.IntegerChoices):
        SEV1 = 1, "SEV1 — critical: widespread outage or data loss"
        SEV2 = 2, "SEV2 — major: a core feature down for many customers"
        SEV3 = 3, "SEV3 — minor: degraded, with a workaround"
        SEV4 = 4, "SEV4 — low: little or no customer impact, or a near miss"

    class Status(models.TextChoices):
        INVESTIGATING = "investigating", "Investigating"
        MITIGATED = "mitigated", "Mitigated"
        RESOLVED = "resolved", "Resolved"

    class Visibility(models.TextChoices):
        INTERNAL = "internal", "Internal — everyone signed in can read it"
        RESTRICTED = "restricted", "Restricted — participants and admins only"

    title = models.CharField(max_length=200)
    severity = models.PositiveSmallIntegerField(choices=Severity, default=Severity.SEV3)
    status = models.CharField(max_length=20, choices=Status, default=Status.INVESTIGATING)
    visibility = models.CharField(max_length=20, choices=Visibility, default=Visibility.INTERNAL)
    summary = models.TextField(blank=True)
    customer_impact = models.TextField(blank=True)
    services = models.ManyToManyField(Service, related_name="incidents", blank=True)
    # Key moments; each optional, validated for order (`clean`).
    started_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IncidentQuerySet.as_manager()

    KEY_MOMENTS = ("started_at", "detected_at", "mitigated_at", "resolved_at")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["severity", "-created_at"]),
            models.Index(fields=["visibility", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.human_id} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("postmortems:incident_detail", args=[self.pk])

    @property
    def human_id(self) -> str:
        return f"INC-{self.pk}"

    @property
    def is_restricted(self) -> bool:
        return self.visibility == self.Visibility.RESTRICTED

    def _since_start(self, moment) -> timedelta | None:
        if self.started_at and moment:
            return moment - self.started_at
        return None

    @property
    def time_to_detect(self) -> timedelta | None:
        return self._since_start(self.detected_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return self._since_start(self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self._since_start(self.resolved_at)


class IncidentChange(models.Model):
    """One edit of an incident's fields: who, when, and each field's old and new value."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="changes")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    # {"field name": ["old as text", "new as text"], ...}
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.incident.human_id} changed by {self.changed_by}"


class Participant(models.Model):
    """A person's role in one incident."""

    class Role(models.TextChoices):
        FACILITATOR = "facilitator", "Facilitator"
        CO_FACILITATOR = "co_facilitator", "Co-facilitator"
        NOTE_TAKER = "note_taker", "Note-taker"
        RESPONDER = "responder", "Responder"
        OBSERVER = "observer", "Observer"

    # Roles that may edit the write-up and submit it (DESIGN.md section 3).
    EDITOR_ROLES = (Role.FACILITATOR, Role.CO_FACILITATOR, Role.NOTE_TAKER)
    FACILITATING_ROLES = (Role.FACILITATOR, Role.CO_FACILITATOR)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    role = models.CharField(max_length=20, choices=Role, default=Role.RESPONDER)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["incident", "added_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "user"], name="one_role_per_incident"),
        ]
        indexes = [models.Index(fields=["user", "incident"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.incident.human_id}"

    @property
    def is_facilitating(self) -> bool:
        return self.role in self.FACILITATING_ROLES
