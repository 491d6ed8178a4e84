"""The benchmark's seeder, at a small scale: sizes, known objects, every state, determinism."""

import hashlib
import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Exists, OuterRef

from accounts.models import Team, User
from postmortems.models import (
    ActionItem,
    Incident,
    Participant,
    Postmortem,
    TimelineEntry,
)
from tests.conftest import needs

SIZES = {
    "people": 60,
    "teams": 4,
    "managers": 8,
    "incidents": 120,
    "entries": 1_000,
    "action_items": 300,
}
ANCHOR = "2026-03-16"


def seed(tmp_path, **extra) -> dict:
    path = tmp_path / "fixtures.json"
    call_command(
        "seed_scale", anchor=date.fromisoformat(ANCHOR), fixtures=str(path), **SIZES, **extra
    )
    return json.loads(path.read_text())


def fingerprint() -> str:
    """A digest of the rows that matter, to compare two seeds."""
    digest = hashlib.sha256()
    for rows in (
        Incident.objects.order_by("pk").values_list("pk", "title", "created_at", "visibility"),
        TimelineEntry.objects.order_by("pk").values_list("pk", "author_id", "action", "state"),
        ActionItem.objects.order_by("pk").values_list("pk", "owner_id", "status", "due_on"),
    ):
        for row in rows:
            digest.update(repr(row).encode())
    return digest.hexdigest()


@pytest.fixture
def postgres():
    needs(connection.vendor == "postgresql", "this needs PostgreSQL (set DATABASE_URL)")


@pytest.mark.django_db
def test_the_seeder_refuses_sqlite_and_says_why(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("checks the refusal on SQLite")
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        seed(tmp_path)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_seeder_loads_exactly_the_sizes_asked_for(postgres, tmp_path):
    fixtures = seed(tmp_path)

    assert fixtures["sizes"] == SIZES
    assert User.objects.count() == 60
    assert Team.objects.count() == 4
    assert Team.managers.through.objects.values("user").distinct().count() == 8
    assert Incident.objects.count() == 120
    assert TimelineEntry.objects.count() == 1_000
    assert ActionItem.objects.count() == 300
    # Every incident has its facilitator; entries are written by the incident's own people, and
    # nobody owns an item of a restricted incident they cannot see.
    assert Participant.objects.filter(role=Participant.Role.FACILITATOR).count() == 120
    outsider = ~Exists(
        Participant.objects.filter(incident=OuterRef("incident"), user=OuterRef("author"))
    )
    assert not TimelineEntry.objects.filter(outsider).exists()
    cannot_see = ~Exists(
        Participant.objects.filter(incident=OuterRef("incident"), user=OuterRef("owner"))
    )
    restricted = ActionItem.objects.filter(
        incident__visibility=Incident.Visibility.RESTRICTED, owner__isnull=False
    )
    assert restricted.exists() and not restricted.filter(cannot_see).exists()


@pytest.mark.django_db
def test_the_known_objects_are_what_the_benchmark_needs(postgres, tmp_path):
    fixtures = seed(tmp_path)

    incident = Incident.objects.get(pk=fixtures["bench_incident_id"])
    assert incident.visibility == Incident.Visibility.INTERNAL
    assert incident.entries.shared().count() == fixtures["bench_incident_shared_entries"] == 200
    person = User.objects.get(pk=fixtures["participant_id"])
    assert person.email == fixtures["participant_email"]
    assert Participant.objects.filter(incident=incident, user=person).exists()
    assert incident.entries.filter(author=person).shared().count() == 25
    assert incident.entries.filter(author=person).drafts().count() == 5
    assert not person.managed_teams.exists() and not person.is_facilitator
    manager = User.objects.get(pk=fixtures["manager_id"])
    teams = sorted(manager.managed_teams.values_list("pk", flat=True))
    assert teams == fixtures["manager_team_ids"] and len(teams) >= 2
    assert Incident.objects.filter(title__icontains=fixtures["search_term"]).exists()


@pytest.mark.django_db
def test_every_state_is_represented(postgres, tmp_path):
    seed(tmp_path)

    def values(model, field):
        return set(model.objects.values_list(field, flat=True).distinct())

    assert values(ActionItem, "status") == set(ActionItem.Status.values)
    assert values(Postmortem, "status") == set(Postmortem.Status.values)
    assert values(Incident, "status") == set(Incident.Status.values)
    assert values(Incident, "visibility") == set(Incident.Visibility.values)
    assert values(Incident, "severity") == set(Incident.Severity.values)
    assert values(TimelineEntry, "state") == set(TimelineEntry.State.values)
    # Some open items are overdue and some are not yet due, relative to the anchor.
    anchor = date.fromisoformat(ANCHOR)
    assert ActionItem.objects.overdue(anchor).exists()
    assert ActionItem.objects.open().filter(due_on__gte=anchor).exists()


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_rows_and_ids_continue_after_them(postgres, tmp_path):
    seed(tmp_path)
    first = fingerprint()
    seed(tmp_path, reset=True)

    assert fingerprint() == first
    # The id sequences were moved past the loaded rows: the app can add more.
    facilitator = User.objects.filter(is_facilitator=True).first()
    incident = Incident.objects.create(title="After the seed", created_by=facilitator)
    assert incident.pk == 121


@pytest.mark.django_db
def test_a_database_with_data_is_refused_unless_reset_is_asked_for(postgres, tmp_path):
    seed(tmp_path)

    with pytest.raises(CommandError, match="--reset"):
        seed(tmp_path)
    assert Incident.objects.count() == 120
