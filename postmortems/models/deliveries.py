from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def lease() -> timedelta:
    """How long a claim holds before a later scan may take it over (longer than any send)."""
    return timedelta(seconds=settings.REMINDERS["DELIVERY_LEASE_SECONDS"])


def _reclaimable(now: datetime) -> Q:
    # Attempts are capped for abandoned claims too: a message that kills its worker every time
    # must not be retried forever.
    attempts_left = Q(attempts__lt=settings.REMINDERS["DELIVERY_MAX_ATTEMPTS"])
    return attempts_left & (
        Q(status=Delivery.Status.CLAIMED, claimed_at__lt=now - lease())
        | Q(status=Delivery.Status.FAILED, is_permanent_failure=False)
    )


class DeliveryQuerySet(models.QuerySet):
    def reclaimable(self, now: datetime) -> "DeliveryQuerySet":
        """Rows a later run may take over: a claim whose lease ran out, or a retryable failure."""
        return self.filter(_reclaimable(now))

    def settled(self, now: datetime) -> "DeliveryQuerySet":
        """Rows nobody should touch: sent, skipped, given up, or held by a live claim."""
        return self.exclude(_reclaimable(now))


class Delivery(models.Model):
    """The ledger that makes each reminder and digest happen once.

    A row is claimed (created) before sending, under a unique key; a second scan, a retry or a
    restarted worker finds the row and does not send again unless the first attempt failed.
    """

    class Kind(models.TextChoices):
        ACCOUNT_REQUEST = "account_request", "Account request"
        ACCOUNT_REMINDER = "account_reminder", "Account reminder"
        MEETING_INVITE = "meeting_invite", "Review meeting invite"
        MEETING_REMINDER = "meeting_reminder", "Review meeting reminder"
        POSTMORTEM_OVERDUE = "postmortem_overdue", "Postmortem overdue"
        ACTION_DUE_SOON = "action_due_soon", "Action item due soon"
        ACTION_OVERDUE = "action_overdue", "Action item overdue"
        ACTION_ESCALATION = "action_escalation", "Action item escalation"
        WEEKLY_DIGEST = "weekly_digest", "Weekly digest"

    class Status(models.TextChoices):
        CLAIMED = "claimed", "Claimed"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    kind = models.CharField(max_length=30, choices=Kind)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deliveries"
    )
    # What the email is about, e.g. "participant:12" or "action_item:7"; "" for digests.
    object_key = models.CharField(max_length=64, blank=True)
    # The period it covers, e.g. "2026-11-23" for a digest week or a due date.
    period = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.CLAIMED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    # A permanent rejection (SMTP 5xx): retrying would fail the same way, so no run re-claims it.
    is_permanent_failure = models.BooleanField(default=False)
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-claimed_at", "-pk"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "recipient", "object_key", "period"], name="deliver_once"
            ),
        ]
        indexes = [models.Index(fields=["status", "claimed_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient_id} ({self.status})"
