"""Workers and the broker under fault: a doubled beat, and Redis stopped while people work.

A worker killed partway through a run is tests/postmortems/test_worker.py's
`test_a_worker_killed_mid_digest_run_leaves_every_recipient_exactly_one_digest`; not repeated.

These start a redis-server of their own on a free port (never the shared one on 6379), so they
can stop and restart it. They need the redis-server program: they skip without it, and fail
under REQUIRE_SERVICES=1.
"""

import re
import shutil
import socket
import subprocess
import time
from collections import Counter
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.test import Client
from django.utils import timezone

from postmortems import reminders, tasks
from postmortems.celery import app as celery_app
from postmortems.models import Delivery, Participant
from tests.conftest import needs
from tests.factories import make_action_item, make_incident, make_participant, make_user

# How long Redis stays down. The brief's 30 s is cut to 3 to keep the suite fast: nothing in
# the mechanism depends on the length, only on requests arriving while it is down.
OUTAGE_SECONDS = 3
MESSAGE_ID = re.compile(r"<delivery-(\d+)\.(\w+)@")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class RedisServer:
    """A throwaway redis-server: no persistence, so a restart also empties it (worst case)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def ping(self) -> bool:
        # A raw PING: redis-py's client retries a refused connection for seconds.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for(self.ping, timeout=10):
            self.process.kill()
            self.process.wait()
            pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        assert not self.ping()


def _reset_broker_pools() -> None:
    # Celery caches its connection and producer pools for the broker it first used.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def own_redis(monkeypatch):
    """A private Redis, the app's broker for the test; eager mode off; all restored after."""
    needs(shutil.which("redis-server") is not None, "this needs the redis-server program")
    server = RedisServer()
    server.start()
    # Celery prefers the CELERY_BROKER_URL environment variable to its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", server.url)
    keys = ("task_always_eager", "broker_url", "broker_transport_options")
    previous = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=server.url,
        broker_transport_options={"visibility_timeout": 3600},
    )
    _reset_broker_pools()
    yield server
    celery_app.conf.update(previous)
    _reset_broker_pools()
    server.stop()


def worker():
    return start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30)


def sent_messages() -> Counter:
    """(kind, recipient address) of every email sent, counted."""
    counts = Counter()
    for message in mail.outbox:
        kind = MESSAGE_ID.search(message.extra_headers.get("Message-ID", "")).group(2)
        counts[(kind, message.to[0])] += 1
    return counts


def settle() -> None:
    """Wait until no delivery is claimed and nothing new is mailed for a moment."""
    seen = -1
    while seen != len(mail.outbox):
        seen = len(mail.outbox)
        time.sleep(0.5)
        wait_for(
            lambda: not Delivery.objects.filter(status=Delivery.Status.CLAIMED).exists(),
            timeout=10,
        )


# --- A doubled beat -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_send_each_reminder_once(own_redis, trust_figures):
    incident = make_incident()
    three_days_ago = timezone.now() - timedelta(days=3)
    people = [make_participant(incident=incident) for _ in range(4)]
    Participant.objects.filter(pk__in=[p.pk for p in people]).update(added_at=three_days_ago)
    for _ in range(3):
        make_action_item(incident=incident, due_on=timezone.localdate() - timedelta(days=2))

    with worker():
        # Two beats (a second beat started by mistake) put the same scan on the queue at once.
        tasks.scan_reminders.delay()
        tasks.scan_reminders.delay()
        assert wait_for(lambda: len(mail.outbox) >= 7, timeout=30), len(mail.outbox)
        settle()

    counts = sent_messages()
    expected = {("account_reminder", p.user.email) for p in people} | {
        ("action_overdue", item.owner.email) for item in incident.action_items.all()
    }
    duplicates = sum(n - 1 for n in counts.values())
    trust_figures(
        "faults: doubled beat",
        due=len(expected),
        sent=sum(counts.values()),
        duplicates=duplicates,
        lost=len(expected - set(counts)),
    )
    assert set(counts) == expected
    assert duplicates == 0
    # Each due reminder has one ledger row, claimed once: the second scan's sends found it taken.
    rows = Delivery.objects.all()
    assert rows.count() == len(expected)
    assert set(rows.values_list("status", "attempts")) == {(Delivery.Status.SENT, 1)}


# --- Redis stopped while people keep working ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_people_keep_working_through_a_broker_outage_and_every_email_goes_once(
    own_redis, trust_figures
):
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    people = [make_user() for _ in range(5)]
    client = Client()
    client.force_login(facilitator)
    add_url = f"/incidents/{incident.pk}/participants/"

    def add(person) -> int:
        return client.post(add_url, {"user": person.pk, "role": "responder"}).status_code

    # Before: the broker is up and the event path sends the request straight away.
    with worker():
        assert add(people[0]) == 302
        assert wait_for(lambda: len(mail.outbox) == 1, timeout=20)

    own_redis.stop()
    started = time.monotonic()
    statuses, slowest = [], 0.0
    try:
        for person in people[1:]:
            began = time.monotonic()
            statuses.append(add(person))
            slowest = max(slowest, time.monotonic() - began)
        # Other work goes on too: a review meeting (its invites are enqueued on save)...
        began = time.monotonic()
        statuses.append(
            client.post(
                f"/incidents/{incident.pk}/meeting/",
                {
                    "starts_at": (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
                    "duration_minutes": "60",
                    "attendees": [people[1].pk, people[2].pk],
                },
            ).status_code
        )
        slowest = max(slowest, time.monotonic() - began)
        # ...and pages that enqueue nothing.
        statuses.append(client.get(f"/incidents/{incident.pk}/").status_code)
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    finally:
        own_redis.start()  # the same port, empty: what was queued before is gone

    assert all(status in (200, 302) for status in statuses), statuses
    assert Participant.objects.filter(incident=incident, user__in=people).count() == 5
    assert incident.review_meeting.attendees.count() == 2
    deferred = Delivery.objects.filter(status=Delivery.Status.FAILED, attempts=0).count()
    assert deferred == 4 + 2  # four account requests and two invites wait in the ledger
    assert len(mail.outbox) == 1

    # After: the next beat's scan takes up what could not be enqueued; a second scan adds none.
    with worker():
        tasks.scan_reminders.delay()
        assert wait_for(lambda: len(mail.outbox) >= 1 + 4 + 2, timeout=30), len(mail.outbox)
        settle()
        tasks.scan_reminders.delay()
        time.sleep(1)
        settle()

    counts = sent_messages()
    expected = {("account_request", p.email) for p in people} | {
        ("meeting_invite", p.email) for p in people[1:3]
    }
    duplicates = sum(n - 1 for n in counts.values())
    lost = len(expected - set(counts))
    trust_figures(
        "faults: Redis down",
        outage_seconds=OUTAGE_SECONDS,
        requests_during_outage=len(statuses),
        failed_requests=sum(1 for s in statuses if s not in (200, 302)),
        slowest_request_ms=round(slowest * 1000),
        emails_due=len(expected),
        delivered=len(set(counts) & expected),
        lost=lost,
        duplicates=duplicates,
    )
    assert lost == 0
    assert duplicates == 0
    assert set(counts) == expected
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


@pytest.fixture
def unreachable_broker(monkeypatch):
    """A broker address where nothing listens (port 1): every enqueue fails at once."""
    url = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    keys = ("task_always_eager", "broker_url")
    previous = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(task_always_eager=False, broker_url=url)
    _reset_broker_pools()
    yield
    celery_app.conf.update(previous)
    _reset_broker_pools()


@pytest.mark.django_db(transaction=True)
def test_an_enqueue_that_finds_no_broker_is_recorded_for_the_scan(unreachable_broker):
    # The same mechanism without a redis-server: runs everywhere, the scan runs in-process.
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    person = make_user()
    client = Client()
    client.force_login(facilitator)

    response = client.post(
        f"/incidents/{incident.pk}/participants/", {"user": person.pk, "role": "responder"}
    )

    assert response.status_code == 302
    participant = Participant.objects.get(incident=incident, user=person)
    row = Delivery.objects.get()
    assert (row.kind, row.recipient_id, row.object_key) == (
        Delivery.Kind.ACCOUNT_REQUEST,
        person.pk,
        f"participant:{participant.pk}",
    )
    assert (row.status, row.attempts) == (Delivery.Status.FAILED, 0)
    assert "broker was unavailable" in row.last_error
    assert mail.outbox == []

    assert reminders.scan() == 1
    assert reminders.scan() == 0

    [message] = mail.outbox
    assert message.to == [person.email]
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Delivery.Status.SENT, 1)
