"""The delivery ledger: claim before sending, mark after, retry what is temporary, never resend."""

import smtplib
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection

from postmortems import deliveries, reminders, tasks
from postmortems.deliveries import Key, Outcome
from postmortems.models import Delivery
from tests.conftest import needs
from tests.factories import make_action_item, make_user

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday


class FlakyBackend(LocmemBackend):
    """The network edge: raises the queued errors one send at a time, then delivers."""

    errors: list[Exception] = []

    def send_messages(self, messages):
        if FlakyBackend.errors:
            raise FlakyBackend.errors.pop(0)
        return super().send_messages(messages)


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = "tests.postmortems.test_deliveries.FlakyBackend"
    FlakyBackend.errors = []
    yield FlakyBackend.errors
    FlakyBackend.errors = []


@pytest.fixture
def due_item(db):
    """An action item whose overdue reminder is due at NOW."""
    with time_machine.travel(NOW, tick=False):
        item = make_action_item(due_on=NOW.date() - timedelta(days=1))
    key = Key(
        Delivery.Kind.ACTION_OVERDUE, item.owner_id, f"action_item:{item.pk}", str(item.due_on)
    )
    return item, key


def key_for(user, kind=Delivery.Kind.WEEKLY_DIGEST, period="2026-03-02") -> Key:
    return Key(kind, user.pk, "", period)


# --- Claiming ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_is_claimed_once_and_a_second_claim_gets_nothing():
    key = key_for(make_user())

    first = deliveries.claim(key)
    second = deliveries.claim(key)

    assert first is not None and first.status == Delivery.Status.CLAIMED and first.attempts == 1
    assert second is None
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_a_claim_older_than_the_lease_is_taken_over_but_a_live_one_is_not(settings):
    settings.REMINDERS = {**settings.REMINDERS, "DELIVERY_LEASE_SECONDS": 600}
    key = key_for(make_user())
    with time_machine.travel(NOW, tick=False):
        deliveries.claim(key)
    with time_machine.travel(NOW + timedelta(minutes=9), tick=False):
        assert deliveries.claim(key) is None
    with time_machine.travel(NOW + timedelta(minutes=11), tick=False):
        taken = deliveries.claim(key)

    assert taken is not None
    assert taken.attempts == 2
    assert taken.claimed_at == NOW + timedelta(minutes=11)


@pytest.mark.django_db
def test_a_failed_delivery_is_retried_until_its_attempts_run_out(settings):
    settings.REMINDERS = {**settings.REMINDERS, "DELIVERY_MAX_ATTEMPTS": 3}
    key = key_for(make_user())
    delivery = deliveries.claim(key)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, attempts=2)

    again = deliveries.claim(key)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)

    assert again.attempts == 3
    assert deliveries.claim(key) is None


@pytest.mark.django_db
def test_a_delivery_that_killed_its_worker_every_time_is_given_up_after_the_last_attempt(
    settings,
):
    settings.REMINDERS = {**settings.REMINDERS, "DELIVERY_MAX_ATTEMPTS": 2}
    key = key_for(make_user())
    with time_machine.travel(NOW, tick=False):
        deliveries.claim(key)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert deliveries.claim(key).attempts == 2
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert deliveries.claim(key) is None


@pytest.mark.django_db
def test_sent_skipped_and_permanently_failed_deliveries_are_never_claimed_again():
    user = make_user()
    for status, permanent in [
        (Delivery.Status.SENT, False),
        (Delivery.Status.SKIPPED, False),
        (Delivery.Status.FAILED, True),
    ]:
        key = key_for(user, period=status)
        Delivery.objects.create(
            kind=key.kind,
            recipient=user,
            period=key.period,
            status=status,
            attempts=1,
            is_permanent_failure=permanent,
            claimed_at=NOW - timedelta(days=30),
        )
        assert deliveries.claim(key) is None, status


@pytest.mark.django_db
def test_unsettled_leaves_out_keys_that_are_done_or_held_in_one_query(
    django_assert_num_queries,
):
    user = make_user()
    done, held, fresh = (key_for(user, period=p) for p in ("a", "b", "c"))
    Delivery.objects.create(kind=done.kind, recipient=user, period="a", status=Delivery.Status.SENT)
    deliveries.claim(held)

    with django_assert_num_queries(1):
        left = deliveries.unsettled([done, held, fresh, fresh])

    assert left == [fresh]


# --- Sending -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_is_marked_sent_with_a_message_id_derived_from_its_row(mailoutbox, due_item):
    item, key = due_item
    with time_machine.travel(NOW, tick=False):
        outcome = reminders.send(key)

    delivery = Delivery.objects.get()
    assert outcome == Outcome.SENT
    assert delivery.status == Delivery.Status.SENT
    assert delivery.sent_at == NOW
    assert delivery.message_id == f"<delivery-{delivery.pk}.action_overdue@testserver>"
    assert mailoutbox[0].extra_headers["Message-ID"] == delivery.message_id
    assert mailoutbox[0].message()["Message-ID"] == delivery.message_id


@pytest.mark.django_db
def test_sending_the_same_key_twice_sends_one_email(mailoutbox, due_item):
    item, key = due_item
    with time_machine.travel(NOW, tick=False):
        outcomes = [reminders.send(key), reminders.send(key)]

    assert outcomes == [Outcome.SENT, Outcome.TAKEN]
    assert len(mailoutbox) == 1
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize(
    "error",
    [
        smtplib.SMTPServerDisconnected("gone"),
        smtplib.SMTPConnectError(421, b"busy"),
        smtplib.SMTPDataError(451, b"try later"),
        smtplib.SMTPResponseException(452, b"mailbox full"),
        smtplib.SMTPRecipientsRefused({"a@example.com": (450, b"greylisted")}),
        ConnectionRefusedError(),
        TimeoutError(),
        OSError("network unreachable"),
    ],
    ids=lambda e: e.__class__.__name__,
)
def test_these_errors_are_temporary(error):
    assert deliveries.is_temporary(error)
    assert isinstance(error, tasks.RETRY_POLICY["autoretry_for"])


@pytest.mark.parametrize(
    "error",
    [
        smtplib.SMTPDataError(554, b"rejected as spam"),
        smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")}),
        smtplib.SMTPSenderRefused(553, b"sender refused", "x@example.com"),
        smtplib.SMTPNotSupportedError(),
    ],
    ids=lambda e: e.__class__.__name__,
)
def test_these_errors_are_permanent(error):
    assert not deliveries.is_temporary(error)


@pytest.mark.django_db
def test_a_temporary_error_is_recorded_and_raised_for_the_retry_policy(flaky, due_item):
    item, key = due_item
    flaky.append(smtplib.SMTPDataError(451, b"try again later"))

    with time_machine.travel(NOW, tick=False), pytest.raises(smtplib.SMTPDataError):
        reminders.send(key)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert "451" in delivery.last_error
    assert not delivery.is_permanent_failure
    assert Delivery.objects.reclaimable(NOW).exists()


@pytest.mark.django_db
def test_the_task_retries_a_temporary_error_and_the_retry_sends_once(flaky, due_item):
    item, key = due_item
    flaky.append(smtplib.SMTPServerDisconnected("dropped"))

    with time_machine.travel(NOW, tick=False):
        # Eager, not propagating: Celery runs the retry at once instead of after the backoff.
        tasks.send_reminder.apply(args=key.as_args(), throw=False)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    assert delivery.attempts == 2
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_permanent_rejection_is_marked_failed_and_never_retried(flaky, due_item):
    item, key = due_item
    flaky.append(smtplib.SMTPRecipientsRefused({item.owner.email: (550, b"no such user")}))

    with time_machine.travel(NOW, tick=False):
        tasks.send_reminder.delay(*key.as_args())
        outcome_of_next_scan = reminders.scan()

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.is_permanent_failure
    assert delivery.attempts == 1
    assert "550" in delivery.last_error
    assert outcome_of_next_scan == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_later_scan_retries_a_failed_delivery_with_attempts_to_spare(flaky, due_item):
    item, key = due_item
    flaky.append(smtplib.SMTPDataError(421, b"closing"))
    with time_machine.travel(NOW, tick=False), pytest.raises(smtplib.SMTPDataError):
        reminders.send(key)

    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        reminders.scan()

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    assert delivery.attempts == 2
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_crashed_claim_is_sent_by_a_scan_after_the_lease(mailoutbox, due_item):
    """A worker died after claiming (row claimed, no sent_at): the lease hands it on."""
    item, key = due_item
    with time_machine.travel(NOW, tick=False):
        deliveries.claim(key)
        reminders.scan()
    assert mailoutbox == []

    with time_machine.travel(NOW + timedelta(minutes=11), tick=False):
        reminders.scan()

    assert len(mailoutbox) == 1
    assert Delivery.objects.get().status == Delivery.Status.SENT


# --- Many at once (the digest batches) ----------------------------------------------------------


@pytest.mark.django_db
def test_claim_many_takes_new_keys_and_retryable_rows_but_not_live_or_settled_ones():
    new, failed, held, sent = (key_for(make_user()) for _ in range(4))
    deliveries.claim(failed)
    Delivery.objects.filter(recipient_id=failed.recipient_id).update(status="failed")
    deliveries.claim(held)
    deliveries.claim(sent)
    Delivery.objects.filter(recipient_id=sent.recipient_id).update(status="sent")

    claimed = deliveries.claim_many([new, failed, held, sent])

    assert set(claimed) == {new, failed}
    row = Delivery.objects.get(recipient_id=new.recipient_id)
    assert claimed[new].pk == row.pk and row.status == Delivery.Status.CLAIMED
    assert row.attempts == 1 and row.claimed_at is not None
    assert claimed[failed].attempts == 2
    assert deliveries.claim_many([new]) == {}  # once claimed, claimed


@pytest.mark.django_db
def test_deliver_many_claims_each_before_sending_and_marks_each_sent(mailoutbox):
    keys = [key_for(make_user()) for _ in range(5)]
    seen = []

    def compose(delivery):
        seen.append(Delivery.objects.get(pk=delivery.pk).status)  # claimed before its send
        return mail.EmailMessage("Hello", "Body", to=[f"{delivery.recipient_id}@example.com"])

    outcomes = deliveries.deliver_many(keys, compose, chunk=2)

    assert outcomes == {Outcome.SENT: 5}
    assert seen == [Delivery.Status.CLAIMED] * 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert deliveries.deliver_many(keys, compose) == {Outcome.TAKEN: 5}
    assert len(mailoutbox) == 5


@pytest.mark.django_db
def test_a_temporary_error_stops_the_batch_hands_back_the_untried_and_the_retry_sends_once(
    mailoutbox,
):
    keys = [key_for(make_user()) for _ in range(5)]

    def compose(delivery):
        return mail.EmailMessage("Hello", "Body", to=[f"{delivery.recipient_id}@example.com"])

    # Two sends go through, then the server goes away.
    sends = iter([True, True, smtplib.SMTPServerDisconnected("gone")])

    class Connection(LocmemBackend):
        def send_messages(self, messages):
            outcome = next(sends, True)
            if isinstance(outcome, Exception):
                raise outcome
            return super().send_messages(messages)

    with pytest.raises(smtplib.SMTPServerDisconnected):
        deliveries.deliver_many(keys, compose, connection=Connection(), chunk=5)

    rows = {d.recipient_id: d for d in Delivery.objects.all()}
    statuses = [rows[key.recipient_id].status for key in keys]
    assert statuses == ["sent", "sent", "failed", "failed", "failed"]
    assert [rows[key.recipient_id].attempts for key in keys] == [1, 1, 1, 0, 0]
    assert "Not tried" in rows[keys[4].recipient_id].last_error

    outcomes = deliveries.deliver_many(keys, compose, connection=Connection())

    assert outcomes == {Outcome.TAKEN: 2, Outcome.SENT: 3}
    assert len(mailoutbox) == 5


@pytest.mark.django_db
def test_a_fault_in_one_message_of_a_batch_is_recorded_and_the_others_go(mailoutbox):
    keys = [key_for(make_user()) for _ in range(3)]

    def compose(delivery):
        if delivery.recipient_id == keys[1].recipient_id:
            raise ValueError("a bug in one digest")
        return mail.EmailMessage("Hello", "Body", to=["someone@example.com"])

    outcomes = deliveries.deliver_many(keys, compose)

    assert outcomes == {Outcome.SENT: 2, Outcome.FAILED: 1}
    failed = Delivery.objects.get(recipient_id=keys[1].recipient_id)
    assert failed.status == Delivery.Status.FAILED and not failed.is_permanent_failure
    assert len(mailoutbox) == 2


def test_sending_tasks_hold_the_retry_policy():
    for task in (
        tasks.send_reminder,
        tasks.send_account_request,
        tasks.send_digest,
        tasks.send_digests,
    ):
        assert task.retry_backoff
        assert task.max_retries == 4
        assert smtplib.SMTPServerDisconnected in task.autoretry_for


# --- Racing scanners on PostgreSQL ---------------------------------------------------------------


def run_in_threads(count: int, target) -> list:
    """Start `count` threads at the same moment; return what each returned (or raised)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_a_stale_row_on_postgresql_let_exactly_one_win():
    needs(connection.vendor == "postgresql", "this needs PostgreSQL (set DATABASE_URL)")
    key = key_for(make_user())
    with time_machine.travel(NOW, tick=False):
        deliveries.claim(key)

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        results = run_in_threads(8, lambda: deliveries.claim(key))

    winners = [r for r in results if isinstance(r, Delivery)]
    assert len(winners) == 1, results
    assert [r for r in results if r is not None and r not in winners] == []
    assert Delivery.objects.get().attempts == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_scans_on_postgresql_send_each_reminder_once(mailoutbox):
    needs(connection.vendor == "postgresql", "this needs PostgreSQL (set DATABASE_URL)")
    with time_machine.travel(NOW, tick=False):
        items = [make_action_item(due_on=NOW.date() - timedelta(days=2)) for _ in range(15)]
        results = run_in_threads(6, reminders.scan)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == len(items)
    assert Delivery.objects.count() == len(items)
    assert sorted(m.to[0] for m in mailoutbox) == sorted(i.owner.email for i in items)
