"""Two saves of one entry at the same moment: one wins, the other is told, no words are lost."""

import threading

import pytest
from django.db import connection, connections

from postmortems.forms.timeline import TimelineEntryForm
from postmortems.models import TimelineEntry
from postmortems.services import timeline as services
from tests.factories import make_entry, make_user


def _valid_form(entry, action):
    data = {
        "occurred_at": entry.occurred_at.strftime("%Y-%m-%dT%H:%M"),
        "action": action,
        "kind": entry.kind,
        "basis": entry.basis,
        "version": str(entry.version),
    }
    form = TimelineEntryForm(
        data, instance=TimelineEntry.objects.get(pk=entry.pk), zone=entry.author.zone
    )
    assert form.is_valid(), form.errors
    return form


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_saves_of_one_version_keep_one_and_refuse_the_other():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serialises writers anyway")
    entry = make_entry(author=make_user(time_zone="UTC"), action="Original")
    barrier = threading.Barrier(2)
    outcomes = []

    def save(action):
        try:
            form = _valid_form(entry, action)
            barrier.wait(timeout=5)
            services.revise_entry(entry, form, expected_version=1, share=False)
            outcomes.append(("saved", action))
        except services.EntryConflict:
            outcomes.append(("conflict", action))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(text,)) for text in ("Tab A", "Tab B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(kind for kind, _ in outcomes) == ["conflict", "saved"]
    winner = next(action for kind, action in outcomes if kind == "saved")
    entry.refresh_from_db()
    assert entry.action == winner and entry.version == 2
    assert list(entry.revisions.values_list("data__action", flat=True)) == ["Original"]


@pytest.mark.django_db
def test_a_save_with_the_current_version_goes_through_after_a_conflict():
    entry = make_entry(author=make_user(time_zone="UTC"), action="One")
    services.revise_entry(entry, _valid_form(entry, "Two"), expected_version=1, share=False)

    with pytest.raises(services.EntryConflict) as conflict:
        services.revise_entry(entry, _valid_form(entry, "Stale"), expected_version=1, share=False)
    assert conflict.value.current.action == "Two"

    entry.refresh_from_db()
    services.revise_entry(entry, _valid_form(entry, "Three"), expected_version=2, share=False)
    entry.refresh_from_db()
    assert entry.action == "Three" and entry.version == 3
