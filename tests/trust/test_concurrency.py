"""Many people saving the same write-up and the same entries at once, on real PostgreSQL.

Each of THREADS people opens the editor at the same version, and all press Save together (a
barrier). Whoever is refused reloads (reads the current version) and saves again, up to TRIES
times. Every request goes through the real view and service. Afterwards: the version counts the
saves exactly, every saved text is in the history, every refused attempt was told so, and no
saved text is missing (lost = 0).
"""

import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.db import connection, connections
from django.test import Client

from postmortems.models import (
    Participant,
    Postmortem,
    PostmortemRevision,
    TimelineEntry,
    TimelineEntryRevision,
)
from tests.conftest import needs
from tests.factories import make_entry, make_incident, make_participant, make_postmortem, make_user

THREADS = 8
TRIES = 5


@dataclass
class Tally:
    attempts: int = 0
    saved: list = field(default_factory=list)  # (text, who)
    conflicts: int = 0
    other: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, text: str = "", who: int = 0) -> None:
        with self.lock:
            self.attempts += 1
            if outcome == "saved":
                self.saved.append((text, who))
            elif outcome == "conflict":
                self.conflicts += 1
            else:
                self.other[outcome] += 1

    def figures(self, lost: int) -> dict:
        return {
            "attempts": self.attempts,
            "saved": len(self.saved),
            "conflicts": self.conflicts,
            "lost": lost,
        }


def run_together(workers) -> None:
    """Run each callable in its own thread, released at the same moment."""
    barrier = threading.Barrier(len(workers))
    failures = []

    def run(work):
        try:
            barrier.wait(timeout=10)
            work()
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's error
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a saver hung"
    assert not failures, failures


def signed_in(user) -> Client:
    client = Client(raise_request_exception=True)
    client.force_login(user)
    return client


# --- The write-up ---------------------------------------------------------------------------------


def postmortem_form(postmortem_id: int, text: str, version: int) -> dict:
    current = Postmortem.objects.get(pk=postmortem_id)
    data = {name: getattr(current, name) for name in Postmortem.SECTIONS}
    data["summary"] = text
    data["version"] = str(version)
    return data


@pytest.mark.django_db(transaction=True)
def test_simultaneous_saves_of_one_write_up_keep_every_save_and_refuse_the_rest(trust_figures):
    needs(connection.vendor == "postgresql", "this needs PostgreSQL (set DATABASE_URL)")
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    editors = [facilitator] + [
        make_participant(incident=incident, role=Participant.Role.CO_FACILITATOR).user
        for _ in range(THREADS - 1)
    ]
    postmortem = make_postmortem(incident=incident, summary="The first words")
    PostmortemRevision.objects.create(
        postmortem=postmortem, version=1, edited_by=facilitator, data=postmortem.section_data()
    )
    url = f"/incidents/{incident.pk}/postmortem/edit/"
    tally = Tally()

    def editor(n: int):
        user = editors[n]
        client = signed_in(user)

        def work():
            version = 1  # everyone opened the editor before anyone saved
            for attempt in range(TRIES):
                text = f"Summary by editor {n}, attempt {attempt}"
                response = client.post(url, postmortem_form(postmortem.pk, text, version))
                if response.status_code == 302:
                    tally.add("saved", text, user.pk)
                    return
                if response.status_code == 409:
                    tally.add("conflict")
                    version = Postmortem.objects.get(pk=postmortem.pk).version  # reload
                    continue
                tally.add(f"status {response.status_code}")
                return

        return work

    run_together([editor(n) for n in range(THREADS)])

    postmortem.refresh_from_db()
    revisions = {r.version: r for r in PostmortemRevision.objects.filter(postmortem=postmortem)}
    in_history = Counter((r.data["summary"], r.edited_by_id) for r in revisions.values())
    lost = sum(1 for saved in tally.saved if in_history[saved] != 1)
    trust_figures("concurrency: one write-up, 8 editors", **tally.figures(lost))

    assert tally.other == Counter(), tally.other
    assert tally.attempts == len(tally.saved) + tally.conflicts
    assert postmortem.version == 1 + len(tally.saved)
    assert sorted(revisions) == list(range(1, postmortem.version + 1))
    assert lost == 0
    assert postmortem.summary == revisions[postmortem.version].data["summary"]
    assert len(tally.saved) >= 2 and tally.conflicts >= 1, "the saves did not overlap"


# --- Timeline entries -----------------------------------------------------------------------------


def entry_form(entry: TimelineEntry, text: str, version: int) -> dict:
    prefix = f"entry-{entry.pk}-"
    return {
        prefix + "occurred_at": entry.occurred_at.strftime("%Y-%m-%dT%H:%M"),
        prefix + "action": text,
        prefix + "kind": entry.kind,
        prefix + "basis": entry.basis,
        prefix + "version": str(version),
    }


@pytest.mark.django_db(transaction=True)
def test_simultaneous_edits_of_the_same_entries_keep_every_saved_word(trust_figures):
    needs(connection.vendor == "postgresql", "this needs PostgreSQL (set DATABASE_URL)")
    author = make_user(time_zone="UTC")
    incident = make_incident()
    entries = [
        make_entry(incident=incident, author=author, action=f"Entry {k}, as first written")
        for k in range(2)
    ]
    tallies = {entry.pk: Tally() for entry in entries}

    def tab(n: int):
        # The author has THREADS tabs open; each edits both entries, in a different order.
        client = signed_in(author)
        order = entries if n % 2 == 0 else entries[::-1]

        def work():
            for entry in order:
                tally = tallies[entry.pk]
                version = 1
                for attempt in range(TRIES):
                    text = f"Entry {entry.pk} from tab {n}, attempt {attempt}"
                    response = client.post(
                        f"/entries/{entry.pk}/edit/", entry_form(entry, text, version)
                    )
                    if response.status_code == 302:
                        tally.add("saved", text, author.pk)
                        break
                    if b"This entry changed since you opened it" in response.content:
                        tally.add("conflict")
                        version = TimelineEntry.objects.get(pk=entry.pk).version  # reload
                        continue
                    tally.add(f"status {response.status_code}")
                    break

        return work

    run_together([tab(n) for n in range(THREADS)])

    total = Tally()
    for entry in entries:
        tally = tallies[entry.pk]
        entry.refresh_from_db()
        # A revision keeps the words an edit replaced; the entry holds the last ones saved.
        history = [r.data["action"] for r in TimelineEntryRevision.objects.filter(entry=entry)] + [
            entry.action
        ]
        versions = sorted(
            TimelineEntryRevision.objects.filter(entry=entry).values_list("version", flat=True)
        )
        lost = sum(1 for text, _ in tally.saved if history.count(text) != 1)

        assert tally.other == Counter(), tally.other
        assert tally.attempts == len(tally.saved) + tally.conflicts
        assert entry.version == 1 + len(tally.saved)
        assert versions == list(range(1, entry.version))
        original = TimelineEntryRevision.objects.get(entry=entry, version=1).data["action"]
        assert original == f"Entry {entries.index(entry)}, as first written"
        assert lost == 0
        total.attempts += tally.attempts
        total.saved += tally.saved
        total.conflicts += tally.conflicts
        total.other += Counter({"lost": lost})
    trust_figures("concurrency: two entries, 8 tabs", **total.figures(total.other["lost"]))
    assert total.conflicts >= 1, "the saves did not overlap"
