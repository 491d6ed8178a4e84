"""Shared fixtures of the trust suite: a scenario with every kind of person and object, hidden
marker strings, database snapshots, and the figures each test reports at the end of the run."""

import hashlib
import itertools
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import Invitation, Team, User
from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Participant,
    Postmortem,
    PostmortemRevision,
    PostmortemTransition,
    ReviewMeeting,
    ReviewQuestion,
    TimelineEntry,
)
from tests.factories import PASSWORD, make_team, make_user
from tests.trust import policy as p

# --- Database snapshots -------------------------------------------------------------------------


def _domain_models():
    for label in ("accounts", "postmortems"):
        yield from apps.get_app_config(label).get_models(include_auto_created=True)


def db_snapshot() -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row of every domain model (many-to-many tables too)."""
    state = {}
    for model in _domain_models():
        rows = list(model._default_manager.order_by("pk").values_list())
        state[model._meta.label] = (len(rows), hashlib.sha1(repr(rows).encode()).hexdigest())
    return state


def snapshot_diff(before: dict, after: dict) -> list[str]:
    return [
        f"{label}: {before[label][0]} → {after[label][0]} rows"
        + ("" if before[label][0] != after[label][0] else " (contents changed)")
        for label in before
        if before[label] != after[label]
    ]


def write_count() -> int | None:
    """Rows written so far on this connection (any table), or None where unknown. A cheap
    first look: when it has not moved, nothing was written and no snapshot is needed."""
    queries = {
        "sqlite": "SELECT total_changes()",
        # Counts of this transaction, aborted savepoints included: they only ever go up.
        "postgresql": "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
        " FROM pg_stat_xact_user_tables",
    }
    if connection.vendor not in queries:
        return None
    with connection.cursor() as cursor:
        cursor.execute(queries[connection.vendor])
        return int(cursor.fetchone()[0])


@contextmanager
def rolled_back():
    """Whatever happens inside is undone, so every case starts from the same scenario."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- The scenario -------------------------------------------------------------------------------

MARKER_RE = re.compile(r"MRK\d{4}Z")


@dataclass
class Scenario:
    """Every principal, and for each visibility and write-up state an incident with the lot:
    entries (shared and draft), a question, a meeting, an action item, a write-up, a factor.

    Each object carries a unique marker string; `markers` says who may see each one."""

    users: dict[str, User]
    password: str
    team: Team
    other_team: Team
    newcomer: User  # active, in nothing: the one a facilitator adds
    invitation: Invitation
    incidents: dict[tuple[str, str], Incident] = field(default_factory=dict)
    entries_by_key: dict[tuple[str, str], TimelineEntry] = field(default_factory=dict)
    postmortems: dict[tuple[str, str], Postmortem] = field(default_factory=dict)
    factors: dict[tuple[str, str], ContributingFactor] = field(default_factory=dict)
    items: dict[str, ActionItem] = field(default_factory=dict)
    observers: dict[str, Participant] = field(default_factory=dict)
    markers: dict[str, frozenset[str]] = field(default_factory=dict)
    marker_labels: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Client] = field(default_factory=dict, repr=False)

    def incident(self, visibility: str, writeup: str = "draft") -> Incident:
        return self.incidents[(visibility, writeup)]

    def entry(self, visibility: str, state: str) -> TimelineEntry:
        return self.entries_by_key[(visibility, state)]

    def principal_of(self, email: str) -> str | None:
        return next((name for name, u in self.users.items() if u.email == email), None)

    def leaks(self, principal: str, text: str) -> list[str]:
        """Markers in `text` that `principal` may not see, with what they label."""
        found = set(MARKER_RE.findall(text))
        return sorted(
            f"{m} ({self.marker_labels[m]})"
            for m in found
            if principal not in self.markers.get(m, ())
        )

    def marker_kind(self, marker: str) -> str:
        """What a marker labels, without the write-up state: "restricted: factor"."""
        where, _, what = self.marker_labels[marker].partition(" ")
        return f"{where.partition('/')[0]}: {what}"

    def shown(self, principal: str, text: str) -> set[str]:
        """Markers in `text` that `principal` may see."""
        return {m for m in MARKER_RE.findall(text) if principal in self.markers.get(m, ())}

    def client(self, principal: str) -> Client:
        """A client signed in as the principal (anonymous: signed out), with no other cookies.

        One client per principal: a new Client builds the whole middleware chain again (WhiteNoise
        scans every static file), which would cost more than most of the requests themselves."""
        client = self._clients.get(principal)
        if client is None:
            client = self._clients[principal] = Client(raise_request_exception=False)
        client.cookies = SimpleCookie()
        if principal in self.cookies:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.cookies[principal]
        return client


def build_scenario() -> Scenario:
    now = timezone.now()
    counter = itertools.count(1)
    users = {
        p.AUTHOR: make_user(display_name="Ada Author"),
        p.PARTICIPANT: make_user(display_name="Pat Participant"),
        p.FACILITATOR: make_user(display_name="Fran Facilitator", is_facilitator=True),
        p.OTHER_FACILITATOR: make_user(display_name="Olu Elsewhere", is_facilitator=True),
        p.MANAGER: make_user(display_name="Mo Manager"),
        p.OTHER_MANAGER: make_user(display_name="Mia Othermanager"),
        p.DEACTIVATED: make_user(display_name="Dee Gone"),
        p.OUTSIDER: make_user(display_name="Oz Outsider"),
        p.ADMIN: make_user(display_name="Ari Admin", is_superuser=True, is_staff=True),
    }
    author, participant, facilitator = (users[x] for x in (p.AUTHOR, p.PARTICIPANT, p.FACILITATOR))
    observer = make_user(display_name="Obi Observer")
    team = make_team(name="Payments", members=[participant], managers=[users[p.MANAGER]])
    other_team = make_team(name="Search", managers=[users[p.OTHER_MANAGER]])
    pending = User.objects.create_user("invited@example.com", None, is_active=False)
    scenario = Scenario(
        users=users,
        password=PASSWORD,
        team=team,
        other_team=other_team,
        newcomer=make_user(display_name="Nell Newcomer"),
        invitation=Invitation.objects.create(user=pending, invited_by=facilitator),
    )

    def marker(seen_by: frozenset[str], label: str) -> str:
        text = f"MRK{next(counter):04d}Z"
        scenario.markers[text] = frozenset(seen_by)
        scenario.marker_labels[text] = label
        return text

    # An incident elsewhere, facilitated by the other facilitator, with the other team's item.
    elsewhere = Incident.objects.create(
        title="Search was slow", created_by=users[p.OTHER_FACILITATOR]
    )
    Participant.objects.create(
        incident=elsewhere, user=users[p.OTHER_FACILITATOR], role=Participant.Role.FACILITATOR
    )
    ActionItem.objects.create(
        incident=elsewhere,
        title="Cache the search index",
        owner=users[p.OTHER_FACILITATOR],
        team=other_team,
        created_by=users[p.OTHER_FACILITATOR],
        due_on=timezone.localdate() - timedelta(days=20),
    )

    for visibility in p.VISIBILITIES:
        seen = p.viewers(visibility)
        for state in p.WRITEUP_STATES:
            where = f"{visibility}/{state}"
            incident = Incident.objects.create(
                title=f"Checkout down {marker(seen, where + ' incident title')}",
                visibility=visibility,
                summary=f"Summary {marker(seen, where + ' incident summary')}",
                customer_impact=f"Impact {marker(seen, where + ' customer impact')}",
                created_by=facilitator,
                started_at=now - timedelta(days=40),
                resolved_at=now - timedelta(days=30),
                status=Incident.Status.RESOLVED,
            )
            scenario.incidents[(visibility, state)] = incident
            roles = [
                (facilitator, Participant.Role.FACILITATOR),
                (author, Participant.Role.RESPONDER),
                (participant, Participant.Role.RESPONDER),
                (users[p.DEACTIVATED], Participant.Role.RESPONDER),
            ]
            for user, role in roles:
                Participant.objects.create(incident=incident, user=user, role=role)
            removable = Participant.objects.create(
                incident=incident, user=observer, role=Participant.Role.OBSERVER
            )
            occurred = now - timedelta(days=35)

            def entry(author_, state_, seen_by, label, incident=incident, occurred=occurred):
                shared = state_ == "shared"
                return TimelineEntry.objects.create(
                    incident=incident,
                    author=author_,
                    occurred_at=occurred,
                    action=f"Restarted the workers {marker(seen_by, label)}",
                    state=TimelineEntry.State.SHARED if shared else TimelineEntry.State.DRAFT,
                    shared_at=now if shared else None,
                )

            shared_entry = entry(author, "shared", seen, where + " author's shared entry")
            draft_entry = entry(author, "draft", {p.AUTHOR}, where + " author's draft entry")
            entry(participant, "shared", seen, where + " participant's shared entry")
            ReviewQuestion.objects.create(
                entry=shared_entry,
                asked_by=facilitator,
                text=f"What did you see? {marker(seen, where + ' review question')}",
            )
            meeting = ReviewMeeting.objects.create(
                incident=incident,
                starts_at=now + timedelta(hours=12),
                location=f"Room {marker(seen, where + ' meeting place')}",
                organiser=facilitator,
            )
            meeting.attendees.add(facilitator, author, participant)
            item = ActionItem.objects.create(
                incident=incident,
                title=f"Alert on lag {marker(seen, where + ' action item title')}",
                description="Page someone.",
                owner=participant,
                team=team,
                created_by=facilitator,
                due_on=timezone.localdate() - timedelta(days=20),
                created_at=now - timedelta(days=8),
            )
            if state == "draft":
                scenario.entries_by_key[(visibility, "shared")] = shared_entry
                scenario.entries_by_key[(visibility, "draft")] = draft_entry
                scenario.items[visibility] = item
                scenario.observers[visibility] = removable
            if state == "none":
                continue
            readers = p.writeup_readers(visibility, state)
            postmortem = Postmortem.objects.create(
                incident=incident,
                status=state,
                summary=f"What happened {marker(readers, where + ' write-up summary')}",
                narrative=f"The story {marker(readers, where + ' write-up narrative')}",
                created_by=facilitator,
                updated_by=facilitator,
                submitted_at=now if state != "draft" else None,
                published_at=now if state == "published" else None,
            )
            PostmortemRevision.objects.create(
                postmortem=postmortem,
                version=1,
                edited_by=facilitator,
                data=postmortem.section_data(),
            )
            if state != "draft":
                PostmortemTransition.objects.create(
                    postmortem=postmortem,
                    from_status="draft",
                    to_status="in_review",
                    by=facilitator,
                    comment=f"Please review {marker(readers, where + ' review comment')}",
                )
            factor = ContributingFactor.objects.create(
                postmortem=postmortem,
                category=ContributingFactor.Category.TECHNICAL,
                description=f"The check missed it {marker(readers, where + ' factor')}",
            )
            factor.entries.add(shared_entry)
            item.contributing_factor = factor
            item.save(update_fields=["contributing_factor"])
            scenario.postmortems[(visibility, state)] = postmortem
            scenario.factors[(visibility, state)] = factor

    # Sessions for everyone, a deactivated person's included (made active just to sign in).
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        scenario.cookies[name] = client.cookies[settings.SESSION_COOKIE_NAME].value
    User.objects.filter(pk=users[p.DEACTIVATED].pk).update(is_active=False)
    users[p.DEACTIVATED].refresh_from_db()
    return scenario


@pytest.fixture
def trust_scenario(db) -> Scenario:
    return build_scenario()


# --- Fixtures of the other trust tests (headers, sessions, faults, logging, ...) go below -------
