"""Thin Celery wrappers: they take ids, hold retry policy, and call plain functions.

Enqueue with `.delay_on_commit(...)` so a task never runs before its rows are committed.
"""

from celery import shared_task


@shared_task
def send_account_request(participant_id: int) -> None:
    """Ask a newly added participant for their account (filled in by the reminders work)."""


@shared_task
def send_meeting_invite(meeting_id: int) -> None:
    """Email the review meeting invite to its attendees (filled in by the reminders work)."""


@shared_task
def scan_reminders() -> None:
    """Find every reminder that is due and send it (filled in by the reminders work)."""


@shared_task
def scan_digests() -> None:
    """Send the weekly digests whose local Monday morning has come (reminders work)."""
