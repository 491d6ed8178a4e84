"""Real workers, a real broker, a real SMTP server: the wiring, and a crash mid-run.

These need Redis (db 15 is this area's) and, for the crash, PostgreSQL: a worker in another
process cannot see a test's in-memory SQLite. They skip on a bare laptop and fail in CI
(REQUIRE_SERVICES=1) when the services are missing.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import connection

from accounts.models import User
from postmortems import tasks
from postmortems.celery import app as celery_app
from postmortems.models import ActionItem, Delivery, Participant
from tests.conftest import needs
from tests.factories import make_incident, make_user

REDIS_URL = "redis://127.0.0.1:6379/15"


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Sink:
    """An SMTP server's mailbox: every message it accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_sink():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    return smtp_sink


def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


def _reset_broker_pools() -> None:
    # Celery caches its connection and producer pools for the broker it first used.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_broker():
    """The app pointed at Redis db 15 with eager mode off; everything restored afterwards."""
    client = redis_client()
    needs(client is not None, f"this needs Redis at {REDIS_URL}")
    client.flushdb()
    keys = ("task_always_eager", "broker_url", "broker_transport_options")
    previous = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=REDIS_URL,
        broker_transport_options={"visibility_timeout": 3600},
    )
    _reset_broker_pools()
    yield client
    celery_app.conf.update(previous)
    _reset_broker_pools()
    client.flushdb()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_account_request_to_a_real_smtp_server(
    redis_broker, smtp_settings
):
    sink = smtp_settings
    incident = make_incident(title="Checkout errors <EU>")
    person = make_user(display_name="Andy")
    participant = Participant.objects.create(
        incident=incident, user=person, added_by=incident.created_by
    )

    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        tasks.send_account_request.delay(participant.pk)
        assert wait_for(lambda: sink.messages, timeout=20), "no message reached the SMTP server"
        assert wait_for(
            lambda: Delivery.objects.filter(status=Delivery.Status.SENT).exists(), timeout=5
        )

    [message] = sink.messages
    delivery = Delivery.objects.get()
    assert message["To"] == person.email
    assert message["Subject"] == f"Your account of {incident.human_id} Checkout errors <EU>"
    assert message["Message-ID"] == delivery.message_id
    assert message["List-Unsubscribe"].strip().startswith("<http://testserver/email-preferences/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f"http://testserver/incidents/{incident.pk}/my-account/" in text
    assert "Checkout errors &lt;EU&gt;" in html
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1


# --- A worker killed partway through a digest run ------------------------------------------------

RECIPIENTS = 200
KILL_AFTER = 60


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "postgres")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker_process(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "postmortems", "worker", "--pool", "solo"]
        + ["--concurrency", "1", "--without-mingle", "--without-gossip", "--without-heartbeat"]
        + ["--loglevel", "WARNING", "--hostname", f"crash-test-{os.getpid()}@%h"],
        cwd=Path(django_settings.BASE_DIR),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _make_recipients(count: int) -> list[User]:
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    users = User.objects.bulk_create(
        User(email=f"digest{n}@example.com", display_name=f"Digest {n}", time_zone="UTC")
        for n in range(count)
    )
    ActionItem.objects.bulk_create(
        ActionItem(
            incident=incident, owner=user, title=f"Item of {user.name}", created_by=facilitator
        )
        for user in users
    )
    # The facilitator owns nothing and manages nothing: exactly `count` digests are due.
    return users


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_digest_run_leaves_every_recipient_exactly_one_digest(
    redis_broker, smtp_sink, monkeypatch, trust_figures
):
    needs(connection.vendor == "postgresql", "this needs PostgreSQL (set DATABASE_URL)")
    users = _make_recipients(RECIPIENTS)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "postmortems.settings",
        "DATABASE_URL": _database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_sink.port),
        "SITE_URL": "http://testserver",
        # Any hour of the week is past "Monday 00:00", so the run works on whatever day CI runs.
        "DIGEST_LOCAL_HOUR": "0",
        # A short lease, so the next scan may take over the claim the killed worker left.
        "REMINDER_DELIVERY_LEASE_SECONDS": "2",
    }
    # The beat's message, sent the way beat sends it: by name, to the broker. Celery lets the
    # CELERY_BROKER_URL environment variable override `broker=`, so point that at Redis db 15 too.
    monkeypatch.setenv("CELERY_BROKER_URL", REDIS_URL)
    beat = Celery("beat", broker=REDIS_URL)

    worker = _start_worker_process(env)
    try:
        beat.send_task("postmortems.tasks.scan_digests")
        assert wait_for(lambda: len(smtp_sink.messages) >= KILL_AFTER, timeout=90, interval=0.005)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        delivered_before_kill = len(smtp_sink.messages)
        claimed_at_kill = Delivery.objects.filter(status=Delivery.Status.CLAIMED).count()

        worker = _start_worker_process(env)
        time.sleep(2.5)  # the killed worker's lease runs out
        beat.send_task("postmortems.tasks.scan_digests")  # the next hourly beat
        assert wait_for(
            lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == RECIPIENTS,
            timeout=120,
            interval=0.2,
        ), Counter(Delivery.objects.values_list("status", flat=True))
        time.sleep(2)  # anything still in flight would arrive now
    finally:
        _stop(worker)
        beat.close()

    messages = list(smtp_sink.messages)
    per_recipient = Counter(m["To"] for m in messages)
    ids_per_recipient = {
        to: {m["Message-ID"] for m in messages if m["To"] == to} for to in per_recipient
    }
    rows = Delivery.objects.filter(kind=Delivery.Kind.WEEKLY_DIGEST)
    trust_figures(
        "crash test: worker SIGKILLed mid digest run",
        recipients=RECIPIENTS,
        delivered_before_kill=delivered_before_kill,
        claimed_unsent_at_kill=claimed_at_kill,
        messages_received=len(messages),
        distinct_message_ids=len({m["Message-ID"] for m in messages}),
        recipients_missing=RECIPIENTS - len(per_recipient),
        recipients_with_a_resent_copy=sum(1 for n in per_recipient.values() if n > 1),
        ledger_rows=rows.count(),
        rows_taken_over=rows.filter(attempts__gt=1).count(),
    )

    assert delivered_before_kill < RECIPIENTS, "the kill came after the run had finished"
    assert rows.count() == RECIPIENTS
    assert set(rows.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert set(per_recipient) == {user.email for user in users}, "someone got no digest"
    # One digest each: a resend is possible only for the one message in flight at the kill,
    # and it carries the same Message-ID, so the recipient's mail system shows it once.
    assert all(len(ids) == 1 for ids in ids_per_recipient.values())
    assert len(messages) <= RECIPIENTS + 1
