from django.conf import settings
from django.db import models
from django.utils import timezone


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
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

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
