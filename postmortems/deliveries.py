"""The delivery ledger: claim a row, send, mark it sent, so each email goes out once.

Every reminder and digest has a key (kind, recipient, object, period), unique in the database.

1. Claim: INSERT the row in a transaction of its own. An IntegrityError means another run has
   it. A row left `claimed` past its lease (its worker died) or `failed` with attempts to spare
   is taken over with one conditional UPDATE, so of two runs racing for it exactly one wins.
2. Send, with a Message-ID derived from the row (`<delivery-{pk}.{kind}@{host}>`).
3. Mark it sent straight away.

Sending and marking cannot be one atomic step: SMTP is not in our transaction. We choose
at-least-once for that one gap. A worker killed after the server accepted the message but before
the mark leaves a claimed row; once the lease runs out a later scan sends it again, with the same
Message-ID, which lets mail systems that deduplicate show it once. Everything else (duplicate
beats, overlapping scans, retries, restarts) finds the row and sends nothing. The gap is one
UPDATE long; the lease (settings.REMINDERS["DELIVERY_LEASE_SECONDS"]) is far longer than a send,
so a slow but live sender is never overtaken.

A batch (deliver_many, the weekly digests) claims a few rows with one INSERT, then sends and marks
each in turn over one SMTP connection: a row waits a few sends between its claim and its send,
still far inside the lease, and a batch that stops early hands back the claims it never tried.
"""

import logging
import smtplib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from .models import Delivery

logger = logging.getLogger(__name__)

# Errors worth another try later: the server or the network had a moment. SMTP 5xx replies are
# permanent and never leave `deliver` (smtplib's errors are OSErrors, so order matters there).
TEMPORARY_ERRORS = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    smtplib.SMTPResponseException,
    smtplib.SMTPRecipientsRefused,
    ConnectionError,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True)
class Key:
    """What makes a delivery unique: the ledger's unique constraint, as a value."""

    kind: str
    recipient_id: int
    object_key: str = ""
    period: str = ""

    def as_args(self) -> tuple:
        # Not dataclasses.astuple: it deep-copies, and a scan calls this for every key it finds.
        return (self.kind, self.recipient_id, self.object_key, self.period)


class Outcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # no longer due, switched off, or nothing to say; recorded once
    TAKEN = "taken"  # another run holds the row or already finished it
    FAILED = "failed"  # permanently rejected; recorded with the error


class Skip(Exception):
    """Raised by a compose function: nothing to send for this key (the reason is recorded)."""


def claim(key: Key, now: datetime | None = None) -> Delivery | None:
    """Take the row for this key, or None when another run has it or it is settled."""
    now = now or timezone.now()
    try:
        # Its own transaction (a savepoint inside one): the claim must be visible to other runs
        # before we send, and a lost race must not poison the caller's transaction.
        with transaction.atomic():
            return Delivery.objects.create(**_claimed_row(key, now))
    except IntegrityError:
        return _take_over(key, now)


def claim_many(keys: Iterable[Key], now: datetime | None = None) -> dict[Key, Delivery]:
    """claim() for many keys: the rows taken, by key. New keys cost one INSERT together."""
    now = now or timezone.now()
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    db = connections[router.db_for_write(Delivery)]
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key]
    rows = [Delivery(**_claimed_row(key, now)) for key in keys]
    qn = db.ops.quote_name
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # INSERT … ON CONFLICT DO NOTHING RETURNING (PostgreSQL, SQLite 3.35+): exactly the rows this
    # statement created come back, so a row another run inserted first is never taken for ours.
    # The ORM's bulk_create(ignore_conflicts=True) cannot say which rows it inserted. In
    # autocommit it commits at once: the claims are visible to other runs before any send.
    sql = (
        f"INSERT INTO {qn(Delivery._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES {', '.join([one_row] * len(rows))} ON CONFLICT DO NOTHING "
        f"RETURNING {qn('id')}, {qn('kind')}, {qn('recipient_id')}, {qn('object_key')}, "
        f"{qn('period')}"
    )
    params = [f.get_db_prep_save(getattr(row, f.attname), db) for row in rows for f in fields]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = {Key(kind, rid, obj, period): pk for pk, kind, rid, obj, period in cursor}
    claimed = {}
    for key, row in zip(keys, rows, strict=True):
        if key in inserted:
            row.pk = inserted[key]
            row._state.adding, row._state.db = False, db.alias
            claimed[key] = row
        elif (taken := _take_over(key, now)) is not None:
            claimed[key] = taken  # a retry: the row failed, or the claim on it ran out
    return claimed


def _claimed_row(key: Key, now: datetime) -> dict:
    return {**_lookup(key), "status": Delivery.Status.CLAIMED, "claimed_at": now, "attempts": 1}


def _take_over(key: Key, now: datetime) -> Delivery | None:
    # The row exists. Take it over only if its claim ran out or it failed with tries to spare;
    # the WHERE is re-checked under the row lock, so one of two racing runs updates it.
    mine = Delivery.objects.filter(**_lookup(key)).reclaimable(now)
    if not mine.update(status=Delivery.Status.CLAIMED, claimed_at=now, attempts=F("attempts") + 1):
        return None
    return Delivery.objects.get(**_lookup(key))


def release(claimed: Iterable[Delivery]) -> None:
    """Hand back claims never tried (a batch stopped early): retryable at once, no attempt spent."""
    Delivery.objects.filter(pk__in=[d.pk for d in claimed], status=Delivery.Status.CLAIMED).update(
        status=Delivery.Status.FAILED,
        attempts=F("attempts") - 1,
        last_error="Not tried: its batch stopped at an earlier error.",
    )


def defer(keys: Iterable[Key], reason: str, now: datetime | None = None) -> None:
    """Record sends that could not be enqueued (the broker was down) as retryable failures.

    The reminder scan takes up retryable rows, so it sends them once the broker is back. A row
    that exists already (sent, or held by a run) is left as it is.
    """
    now = now or timezone.now()
    Delivery.objects.bulk_create(
        [
            Delivery(
                kind=key.kind,
                recipient_id=key.recipient_id,
                object_key=key.object_key,
                period=key.period,
                status=Delivery.Status.FAILED,
                attempts=0,  # none made yet: the scan's claim counts the first
                claimed_at=now,
                last_error=reason[:2000],
            )
            for key in keys
        ],
        ignore_conflicts=True,
    )


def unsettled(keys: Iterable[Key], now: datetime | None = None) -> list[Key]:
    """The keys without a settled row (one query), so scans enqueue only work left to do."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    settled = set(
        Delivery.objects.settled(now or timezone.now())
        .filter(
            kind__in={key.kind for key in keys},
            recipient_id__in={key.recipient_id for key in keys},
            object_key__in={key.object_key for key in keys},
        )
        .order_by()
        .values_list("kind", "recipient_id", "object_key", "period")
    )
    return [key for key in keys if key.as_args() not in settled]


def message_id(delivery: Delivery) -> str:
    """The same for every attempt of one delivery, so a resend is recognisably the same mail."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<delivery-{delivery.pk}.{delivery.kind}@{host}>"


def is_temporary(exc: BaseException) -> bool:
    """4xx replies, dropped connections and network errors; not 5xx replies."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPException):
        return False  # e.g. SMTPNotSupportedError: a configuration problem, not a blip
    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def deliver(key: Key, compose: Callable[[Delivery], EmailMessage]) -> Outcome:
    """Claim, compose, send, mark: safe to call any number of times for one key."""
    delivery = claim(key)
    if delivery is None:
        return Outcome.TAKEN
    return _send_claimed(delivery, compose)


def deliver_many(
    keys: Iterable[Key],
    compose: Callable[[Delivery], EmailMessage],
    *,
    connection=None,
    chunk: int = 20,
) -> Counter:
    """deliver() for many keys over one mail connection; the outcomes, counted.

    Rows are claimed `chunk` at a time (one INSERT), so a row waits a few sends, far inside the
    lease, between its claim and its send; each is still marked sent straight after its own
    send. A temporary error stops the run and is raised for the task's retry policy, after the
    claims not yet tried are released, so that the retry sends them. Any other error in one
    message is recorded on its row and logged, and the rest go on.
    """
    keys = list(keys)
    outcomes: Counter = Counter()
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        claimed = claim_many(part)
        if len(claimed) < len(part):
            outcomes[Outcome.TAKEN] += len(part) - len(claimed)
        pending = [claimed[key] for key in part if key in claimed]
        while pending:
            delivery = pending.pop(0)
            try:
                outcomes[_send_claimed(delivery, compose, connection)] += 1
            except TEMPORARY_ERRORS:
                release(pending)
                raise
            except Exception:
                logger.exception("Delivery %s (%s) failed", delivery.pk, delivery.kind)
                outcomes[Outcome.FAILED] += 1
            except BaseException:
                # Stopped (a worker shutting down): the claims never tried may go at once. The
                # one in flight keeps its claim: it may have gone out, and its lease decides.
                release(pending)
                raise
    return outcomes


def _send_claimed(
    delivery: Delivery, compose: Callable[[Delivery], EmailMessage], connection=None
) -> Outcome:
    # At most once per key, save the crash gap in the module docstring. Temporary errors are
    # recorded and re-raised for the task's retry policy; a permanent rejection is recorded only.
    try:
        message = compose(delivery)
        message.extra_headers["Message-ID"] = message_id(delivery)
        if connection is not None:
            # Opened here once and left open for the next message (the caller closes it): a
            # backend that opens the connection inside send() closes it again after one message.
            connection.open()
            message.connection = connection
        message.send()
    except Skip as reason:
        _update(delivery, status=Delivery.Status.SKIPPED, last_error=str(reason))
        return Outcome.SKIPPED
    except Exception as exc:
        permanent = isinstance(exc, smtplib.SMTPException) and not is_temporary(exc)
        _update(
            delivery,
            status=Delivery.Status.FAILED,
            last_error=f"{exc.__class__.__name__}: {exc}"[:2000],
            is_permanent_failure=permanent,
        )
        logger.warning("Delivery %s failed (%s): %r", delivery.pk, delivery.kind, exc)
        if permanent:
            return Outcome.FAILED
        raise
    # Straight after the send: the shorter this gap, the rarer a resend after a crash.
    _update(
        delivery,
        status=Delivery.Status.SENT,
        sent_at=timezone.now(),
        message_id=message.extra_headers["Message-ID"],
        last_error="",
    )
    return Outcome.SENT


def _lookup(key: Key) -> dict:
    return {
        "kind": key.kind,
        "recipient_id": key.recipient_id,
        "object_key": key.object_key,
        "period": key.period,
    }


def _update(delivery: Delivery, **fields) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)
