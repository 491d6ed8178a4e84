"""Demo data for `make run`: people in every role, teams, and incidents told from several sides.

Idempotent: running it twice changes nothing. Never used in production. Times are relative to
now, so the demo always looks recent and some action items are always overdue.
"""

from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from accounts.models import Team, User

from .models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Participant,
    Postmortem,
    PostmortemTransition,
    ReviewMeeting,
    ReviewQuestion,
    Service,
    TimelineEntry,
)

PASSWORD = "postmortem-demo"

# (email, display name, time zone, is_facilitator, is_superuser)
PEOPLE = [
    ("admin@example.com", "Ada Admin", "Europe/London", False, True),
    ("mara@example.com", "Mara Okafor", "Europe/London", True, False),
    ("tim@example.com", "Tim Novak", "America/New_York", True, False),
    ("andy@example.com", "Andy Brandt", "Europe/Berlin", False, False),
    ("amita@example.com", "Amita Rao", "Asia/Kolkata", False, False),
    ("mei@example.com", "Mei Chen", "America/Los_Angeles", False, False),
    ("irene@example.com", "Irene Duval", "Europe/Berlin", False, False),
    ("oscar@example.com", "Oscar Lindqvist", "UTC", False, False),
]

SIGN_INS = [
    ("admin@example.com", "admin (Django admin too)"),
    ("mara@example.com", "facilitator"),
    ("tim@example.com", "facilitator (a second one, to approve reviews)"),
    ("andy@example.com", "engineer, responder"),
    ("amita@example.com", "engineer, responder"),
    ("mei@example.com", "engineer, responder"),
    ("irene@example.com", "manager of Payments and Platform"),
    ("oscar@example.com", "signed-in person in no incident"),
]


def _at(day: datetime, hh: int, mm: int) -> datetime:
    return day.replace(hour=hh, minute=mm, second=0, microsecond=0)


def _entry(incident, author, when, *, shared=True, **fields) -> TimelineEntry:
    return TimelineEntry.objects.create(
        incident=incident,
        author=author,
        occurred_at=when,
        occurred_tz=author.time_zone,
        state=TimelineEntry.State.SHARED if shared else TimelineEntry.State.DRAFT,
        shared_at=when + timedelta(days=1) if shared else None,
        created_at=when + timedelta(days=1),
        updated_at=when + timedelta(days=1),
        **fields,
    )


def seed() -> bool:
    """Create the demo data if it is not there. Returns whether anything was created."""
    if User.objects.filter(email="mara@example.com").exists():
        return False
    p = {}
    for email, name, zone, is_facilitator, is_superuser in PEOPLE:
        p[email.split("@")[0]] = User.objects.create_user(
            email,
            PASSWORD,
            display_name=name,
            time_zone=zone,
            is_facilitator=is_facilitator,
            is_superuser=is_superuser,
            is_staff=is_superuser,
        )
    payments = Team.objects.create(name="Payments")
    payments.members.add(p["andy"], p["amita"])
    payments.managers.add(p["irene"])
    platform = Team.objects.create(name="Platform")
    platform.members.add(p["mei"], p["mara"], p["tim"])
    platform.managers.add(p["irene"])
    Team.objects.create(name="Search").members.add(p["oscar"])

    services = {
        name: Service.objects.create(name=name)
        for name in ("checkout", "payments-api", "postgres", "status-page", "search", "staging")
    }
    now = timezone.now()
    _checkout_incident(p, services, now, payments, platform)
    _restricted_incident(p, services, now)
    _search_incident(p, services, now, platform)
    return True


def _checkout_incident(p, services, now, payments, platform) -> None:
    day = (now - timedelta(days=9)).astimezone(UTC)
    incident = Incident.objects.create(
        title="Checkout payments failing after a database failover",
        severity=Incident.Severity.SEV2,
        status=Incident.Status.RESOLVED,
        summary=(
            "For about 25 minutes, roughly a third of card payments at checkout failed with "
            "502 errors. The payments database had failed over to its replica; payments-api "
            "kept connections open to the old primary."
        ),
        customer_impact="About 1,900 checkouts failed; customers could retry. No double charges.",
        started_at=_at(day, 13, 58),
        detected_at=_at(day, 14, 2),
        mitigated_at=_at(day, 14, 24),
        resolved_at=_at(day, 15, 10),
        created_by=p["mara"],
        created_at=_at(day, 14, 12),
    )
    incident.services.add(
        services["checkout"],
        services["payments-api"],
        services["postgres"],
        services["status-page"],
    )
    roles = [
        ("mara", Participant.Role.FACILITATOR),
        ("andy", Participant.Role.RESPONDER),
        ("amita", Participant.Role.RESPONDER),
        ("mei", Participant.Role.CO_FACILITATOR),
        ("tim", Participant.Role.OBSERVER),
    ]
    for key, role in roles:
        Participant.objects.create(
            incident=incident,
            user=p[key],
            role=role,
            added_by=p["mara"],
            added_at=_at(day, 14, 15),
        )
    K, B = TimelineEntry.Kind, TimelineEntry.Basis
    andy, amita, mei, mara = p["andy"], p["amita"], p["mei"], p["mara"]
    _entry(
        incident,
        andy,
        _at(day, 14, 2),
        kind=K.OBSERVATION,
        basis=B.OBSERVED,
        observation="Paged: 'checkout error rate above 5%'. The dashboard showed 502s from "
        "payments-api, about 30% of requests.",
        expectation="A bad deploy. We had shipped payments-api at 13:50.",
        understanding="I thought the 13:50 deploy had broken something.",
    )
    _entry(
        incident,
        amita,
        _at(day, 14, 4),
        kind=K.OBSERVATION,
        basis=B.OBSERVED,
        observation="Replica-lag alert for the payments database in #db-alerts.",
        assumption="The nightly batch job often causes lag around this time, so I assumed "
        "it was that and kept watching.",
        evidence_url="https://grafana.example.com/d/db/payments?from=1358&to=1430",
    )
    _entry(
        incident,
        andy,
        _at(day, 14, 9),
        kind=K.ACTION,
        basis=B.RECOLLECTION,
        is_approximate=True,
        action="Rolled back payments-api to the previous release.",
        observation="I think the error rate dropped a little after the rollback.",
        expectation="Errors would stop within a couple of minutes.",
        assumption="That the deploy was the cause; nothing else had changed that I knew of.",
    )
    _entry(
        incident,
        amita,
        _at(day, 14, 8),
        kind=K.OBSERVATION,
        basis=B.OBSERVED,
        observation="Error rate flat at about 30% from 14:00 to 14:22; no change around "
        "the rollback.",
        understanding="At the time I did not connect the errors to the database at all.",
    )
    _entry(
        incident,
        mei,
        _at(day, 14, 10),
        kind=K.COMMUNICATION,
        basis=B.OBSERVED,
        action="Posted 'Investigating: some card payments are failing' on the status page.",
        expectation="Support would link to it from the chat widget.",
    )
    _entry(
        incident,
        mara,
        _at(day, 14, 12),
        kind=K.DECISION,
        basis=B.OBSERVED,
        action="Opened #inc-checkout and took incident command; asked Amita to join because "
        "the database alert and the errors started within minutes of each other.",
        understanding="Two alerts close together looked like more than a coincidence.",
    )
    _entry(
        incident,
        amita,
        _at(day, 14, 15),
        kind=K.OBSERVATION,
        basis=B.OBSERVED,
        observation="The cluster manager had promoted the replica at 13:58. payments-api "
        "pods still held connections to the old primary, now read-only.",
        expectation="The connection pool would reconnect after a failover by itself.",
        assumption="The pool's health check covered writes; it only ran SELECT 1.",
    )
    key = _entry(
        incident,
        amita,
        _at(day, 14, 22),
        kind=K.ACTION,
        basis=B.OBSERVED,
        action="Restarted the payments-api pods so they connected to the new primary.",
        observation="Errors fell to zero within two minutes.",
        key_moment=TimelineEntry.KeyMoment.MITIGATED,
    )
    _entry(
        incident,
        andy,
        _at(day, 14, 23),
        kind=K.OBSERVATION,
        basis=B.OBSERVED,
        observation="Dashboard green again; payments succeeding.",
        understanding="Until Amita explained the failover in the channel I still believed "
        "the rollback had fixed it.",
    )
    _entry(
        incident,
        mei,
        _at(day, 14, 30),
        kind=K.COMMUNICATION,
        basis=B.OBSERVED,
        action="Status page: 'Mitigated: payments are succeeding again; we are monitoring.'",
    )
    _entry(
        incident,
        andy,
        _at(day, 14, 40),
        shared=False,
        kind=K.ACTION,
        basis=B.RECOLLECTION,
        action="(draft) Checked whether the deploy at 13:50 touched the pool settings. "
        "Need to look at the diff again before I share this.",
    )
    first = TimelineEntry.objects.get(incident=incident, author=andy, occurred_at=_at(day, 14, 2))
    first.key_moment = TimelineEntry.KeyMoment.DETECTED
    first.save(update_fields=["key_moment"])
    rollback = TimelineEntry.objects.get(
        incident=incident, author=andy, occurred_at=_at(day, 14, 9)
    )
    ReviewQuestion.objects.create(
        entry=rollback,
        asked_by=mara,
        text="What did the dashboard show you right after the rollback? Amita's account has "
        "the error rate flat until 14:22.",
    )
    ReviewQuestion.objects.create(
        entry=key,
        asked_by=mara,
        text="What would have told us sooner that the pool was still on the old primary?",
    )

    postmortem = Postmortem.objects.create(
        incident=incident,
        status=Postmortem.Status.IN_REVIEW,
        version=3,
        created_by=mara,
        updated_by=mara,
        created_at=_at(day, 16, 0) + timedelta(days=1),
        updated_at=now - timedelta(days=2),
        submitted_at=now - timedelta(days=2),
        summary="A database failover left payments-api writing to a read-only node for 24 "
        "minutes. Responders first followed the most recent change, a deploy.",
        impact="About 1,900 failed checkouts between 13:58 and 14:24 UTC.",
        narrative=(
            "The on-call engineer saw the error alert first and, reasonably, suspected the "
            "deploy that had shipped eight minutes earlier. The replica-lag alert arrived in a "
            "different channel and looked like a familiar nightly pattern. The two were only "
            "connected when the facilitator brought both people into one channel."
        ),
        went_well="Rollback and status-page updates happened within ten minutes of the page.",
        got_lucky="The failover happened at a quiet hour for European checkouts.",
        difficult="Database alerts and application alerts go to different channels.",
        learning_points="- A connection pool health check of `SELECT 1` does not detect a "
        "read-only primary.\n- The most recent deploy is a strong pull on "
        "attention, even when it is not involved.",
        open_questions="Why did the cluster manager fail over? The host metrics look normal.",
    )
    PostmortemTransition.objects.create(
        postmortem=postmortem,
        from_status=Postmortem.Status.DRAFT,
        to_status=Postmortem.Status.IN_REVIEW,
        by=mara,
        at=now - timedelta(days=2),
        comment="Ready for review — Tim, could you take it?",
    )
    pool = ContributingFactor.objects.create(
        postmortem=postmortem,
        category=ContributingFactor.Category.TECHNICAL,
        description="The pool's health check (`SELECT 1`) passes on a read-only node, so "
        "connections to the demoted primary were never replaced.",
    )
    pool.entries.add(
        TimelineEntry.objects.get(incident=incident, author=amita, occurred_at=_at(day, 14, 15))
    )
    channels = ContributingFactor.objects.create(
        postmortem=postmortem,
        category=ContributingFactor.Category.COMMUNICATION,
        description="Database and application alerts arrive in different channels; nobody "
        "saw both until 14:12.",
    )
    channels.entries.add(
        TimelineEntry.objects.get(incident=incident, author=amita, occurred_at=_at(day, 14, 4)),
        TimelineEntry.objects.get(incident=incident, author=mara, occurred_at=_at(day, 14, 12)),
    )
    today = timezone.localdate()
    items = [
        (
            "Make the pool health check detect a read-only primary",
            amita,
            payments,
            pool,
            ActionItem.Kind.DETECT,
            ActionItem.Priority.HIGH,
            today - timedelta(days=3),
            ActionItem.Status.IN_PROGRESS,
        ),
        (
            "Route database alerts into the incident channel of the affected service",
            mei,
            platform,
            channels,
            ActionItem.Kind.PROCESS,
            ActionItem.Priority.MEDIUM,
            today + timedelta(days=5),
            ActionItem.Status.OPEN,
        ),
        (
            "Add a failover drill to the payments game day",
            andy,
            payments,
            pool,
            ActionItem.Kind.LEARN,
            ActionItem.Priority.LOW,
            today + timedelta(days=30),
            ActionItem.Status.OPEN,
        ),
    ]
    for title, owner, team, factor, kind, priority, due_on, status in items:
        ActionItem.objects.create(
            incident=incident,
            title=title,
            owner=owner,
            team=team,
            contributing_factor=factor,
            kind=kind,
            priority=priority,
            due_on=due_on,
            status=status,
            created_by=mara,
            created_at=now - timedelta(days=2),
        )
    meeting_day = timezone.localtime(now + timedelta(days=2)).date()
    meeting = ReviewMeeting.objects.create(
        incident=incident,
        organiser=mara,
        starts_at=timezone.make_aware(datetime.combine(meeting_day, time(15, 0))),
        duration_minutes=60,
        location="Room 4 (Lovelace)",
        video_url="https://meet.example.com/inc-checkout-review",
    )
    meeting.attendees.add(mara, andy, amita, mei, p["tim"], p["irene"])


def _restricted_incident(p, services, now) -> None:
    day = (now - timedelta(days=4)).astimezone(UTC)
    incident = Incident.objects.create(
        title="Staging credentials exposed in a public build log",
        severity=Incident.Severity.SEV3,
        status=Incident.Status.MITIGATED,
        visibility=Incident.Visibility.RESTRICTED,
        summary="A CI job printed the staging database URL, password included, to a log "
        "visible to anyone with the link. The credentials were rotated.",
        started_at=_at(day, 9, 30),
        detected_at=_at(day, 10, 5),
        mitigated_at=_at(day, 10, 40),
        created_by=p["mara"],
        created_at=_at(day, 10, 10),
    )
    incident.services.add(services["staging"])
    Participant.objects.create(
        incident=incident,
        user=p["mara"],
        role=Participant.Role.FACILITATOR,
        added_by=p["mara"],
        added_at=_at(day, 10, 15),
    )
    Participant.objects.create(
        incident=incident,
        user=p["mei"],
        role=Participant.Role.RESPONDER,
        added_by=p["mara"],
        added_at=_at(day, 10, 15),
    )
    _entry(
        incident,
        p["mei"],
        _at(day, 10, 5),
        kind=TimelineEntry.Kind.OBSERVATION,
        observation="A contractor messaged that a build log showed a password.",
        action="Made the build log private, then rotated the staging credentials.",
    )


def _search_incident(p, services, now, platform) -> None:
    day = (now - timedelta(days=40)).astimezone(UTC)
    mara, tim, mei = p["mara"], p["tim"], p["mei"]
    incident = Incident.objects.create(
        title="Search results stale for six hours after an index rebuild stalled",
        severity=Incident.Severity.SEV3,
        status=Incident.Status.RESOLVED,
        summary="A nightly index rebuild stalled on a full disk; search served yesterday's "
        "prices until the morning.",
        customer_impact="Search showed out-of-date prices; checkout charged the right ones.",
        started_at=_at(day, 1, 0),
        detected_at=_at(day, 6, 40),
        mitigated_at=_at(day, 7, 15),
        resolved_at=_at(day, 9, 0),
        created_by=mara,
        created_at=_at(day, 7, 0),
    )
    incident.services.add(services["search"])
    for user, role in ((mara, Participant.Role.FACILITATOR), (mei, Participant.Role.RESPONDER)):
        Participant.objects.create(
            incident=incident, user=user, role=role, added_by=mara, added_at=_at(day, 7, 5)
        )
    _entry(
        incident,
        mei,
        _at(day, 6, 40),
        kind=TimelineEntry.Kind.OBSERVATION,
        observation="Support ticket: search shows a price that differs from the product page.",
        understanding="I thought a cache had not been purged.",
    )
    _entry(
        incident,
        mei,
        _at(day, 7, 15),
        kind=TimelineEntry.Kind.ACTION,
        action="Freed disk space on the indexer and restarted the rebuild.",
        observation="Rebuild progressed again; finished at 08:50.",
    )
    postmortem = Postmortem.objects.create(
        incident=incident,
        status=Postmortem.Status.PUBLISHED,
        version=4,
        created_by=mara,
        updated_by=mara,
        updated_at=now - timedelta(days=30),
        submitted_at=now - timedelta(days=32),
        published_at=now - timedelta(days=30),
        summary="The nightly rebuild stalled silently on a full disk.",
        impact="Six hours of stale prices in search results.",
        narrative="Nothing alerted on a rebuild that made no progress; a customer noticed first.",
        went_well="Once noticed, the fix took 35 minutes.",
        learning_points="A job that can stall needs a progress check, not just a failure check.",
    )
    PostmortemTransition.objects.create(
        postmortem=postmortem,
        from_status=Postmortem.Status.DRAFT,
        to_status=Postmortem.Status.IN_REVIEW,
        by=mara,
        at=now - timedelta(days=32),
    )
    PostmortemTransition.objects.create(
        postmortem=postmortem,
        from_status=Postmortem.Status.IN_REVIEW,
        to_status=Postmortem.Status.PUBLISHED,
        by=tim,
        at=now - timedelta(days=30),
        comment="Clear and fair. Thank you, Mei, for the detail.",
    )
    factor = ContributingFactor.objects.create(
        postmortem=postmortem,
        category=ContributingFactor.Category.TECHNICAL,
        description="The rebuild has no progress alert; a stall looks like a long run.",
    )
    today = timezone.localdate()
    done_at = now - timedelta(days=12)
    items = [
        (
            "Alert when the index rebuild makes no progress for 30 minutes",
            ActionItem.Status.DONE,
            today - timedelta(days=14),
            "",
        ),
        (
            "Move the indexer's scratch space to its own volume",
            ActionItem.Status.OPEN,
            today - timedelta(days=10),
            "",
        ),
        (
            "Rewrite the indexer in another language",
            ActionItem.Status.WONT_DO,
            today - timedelta(days=20),
            "Not needed: the stall was about disk, not the code.",
        ),
    ]
    for title, status, due_on, reason in items:
        ActionItem.objects.create(
            incident=incident,
            title=title,
            owner=mei,
            team=platform,
            contributing_factor=factor,
            status=status,
            due_on=due_on,
            closed_reason=reason,
            created_by=mara,
            created_at=now - timedelta(days=30),
            completed_at=done_at if status == ActionItem.Status.DONE else None,
        )
