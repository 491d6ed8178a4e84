"""Thin Celery wrappers: they take ids, hold retry policy, and call plain functions.

Enqueue with `.delay_on_commit(...)` so a task never runs before its rows are committed. The
event tasks (EventTask) do not fail the request when the broker is down: the scan catches up.
Sending tasks retry temporary SMTP and network errors with backoff; a permanent (5xx) rejection
is recorded on the delivery as failed by `deliveries.deliver` and never retried. Every send
claims its ledger row first, so a retry, a duplicate message or a redelivery after a crash sends
nothing that was already sent.
"""

import functools
import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnavailable

from . import deliveries, digests, reminders
from .deliveries import TEMPORARY_ERRORS, Key

logger = logging.getLogger(__name__)

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


class EventTask(DjangoTask):
    """A task enqueued when something happens: a participant added, a meeting saved.

    When the broker is down at that moment, the person's request must still succeed (its rows
    are committed by then). So instead of raising, the sends the task would make are written to
    the delivery ledger as retryable failures, and the next reminder scan, which takes up
    retryable rows, sends them: each once, as the ledger guarantees.
    """

    # The ledger keys the task sends for its argument; set per task (a staticmethod).
    pending_keys = None

    def delay_on_commit(self, *args, **kwargs) -> None:
        transaction.on_commit(functools.partial(self.delay_or_defer, *args, **kwargs))

    def delay_or_defer(self, *args, **kwargs):
        try:
            return self.delay(*args, **kwargs)
        except BrokerUnavailable as exc:
            try:
                keys = self.pending_keys(*args, **kwargs)
                deliveries.defer(keys, f"Not enqueued, the broker was unavailable ({exc!r})")
            except Exception:  # noqa: BLE001 - the request has committed; never fail it now
                logger.exception("Could not record %s%r for the next scan", self.name, args)
                return None
            logger.warning(
                "Broker unavailable: %s%r left to the next scan (%d deliveries): %r",
                self.name,
                args,
                len(keys),
                exc,
            )
            return None


@shared_task(
    base=EventTask,
    pending_keys=staticmethod(reminders.account_request_keys),
    **RETRY_POLICY,
)
def send_account_request(participant_id: int) -> str | None:
    """Ask a newly added participant for their account."""
    return reminders.send_account_request(participant_id)


@shared_task(base=EventTask, pending_keys=staticmethod(reminders.meeting_invite_keys))
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


@shared_task(**RETRY_POLICY)
def send_digests(period: str, recipient_ids: list[int]) -> dict[str, int]:
    """Send a batch of weekly digests for one week over one SMTP connection; a retry sends only
    those not yet sent (the ledger)."""
    return {str(outcome): n for outcome, n in digests.send_many(period, recipient_ids).items()}


@shared_task
def scan_digests() -> int:
    """Enqueue the weekly digests whose local Monday morning has come, in batches."""
    return digests.scan(dispatch_batch=send_digests.delay)
