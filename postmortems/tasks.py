"""Thin Celery wrappers: they take ids, hold retry policy, and call plain functions.

Enqueue with `.delay_on_commit(...)` so a task never runs before its rows are committed.
Sending tasks retry temporary SMTP and network errors with backoff; a permanent (5xx) rejection
is recorded on the delivery as failed by `deliveries.deliver` and never retried. Every send
claims its ledger row first, so a retry, a duplicate message or a redelivery after a crash sends
nothing that was already sent.
"""

from celery import shared_task
from django.conf import settings

from . import digests, reminders
from .deliveries import TEMPORARY_ERRORS, Key

RETRY_POLICY = {
    "autoretry_for": TEMPORARY_ERRORS,
    "retry_backoff": 30,  # seconds: 30, 60, 120, ... with jitter
    "retry_backoff_max": 30 * 60,
    "retry_jitter": True,
    # The ledger counts the first attempt too.
    "max_retries": settings.REMINDERS["DELIVERY_MAX_ATTEMPTS"] - 1,
}


def _enqueue(key: Key) -> None:
    send_reminder.delay(*key.as_args())


@shared_task(**RETRY_POLICY)
def send_account_request(participant_id: int) -> str | None:
    """Ask a newly added participant for their account."""
    return reminders.send_account_request(participant_id)


@shared_task
def send_meeting_invite(meeting_id: int) -> int:
    """Email the review meeting invite to its attendees, one task per attendee."""
    return reminders.send_meeting_invite(meeting_id, dispatch=_enqueue)


@shared_task(**RETRY_POLICY)
def send_reminder(kind: str, recipient_id: int, object_key: str, period: str) -> str:
    """Send one reminder (one ledger key)."""
    return reminders.send(Key(kind, recipient_id, object_key, period))


@shared_task
def scan_reminders() -> int:
    """Find every reminder that is due and enqueue one send for each."""
    return reminders.scan(dispatch=_enqueue)


@shared_task(**RETRY_POLICY)
def send_digest(recipient_id: int, period: str) -> str:
    """Send one person's weekly digest for the week starting `period` (their local Monday)."""
    return digests.send(recipient_id, period)


@shared_task
def scan_digests() -> int:
    """Enqueue the weekly digests whose local Monday morning has come."""
    return digests.scan(dispatch=send_digest.delay)
