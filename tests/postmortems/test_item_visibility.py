"""Each action item's copy of its incident's visibility (item_visibility.py) is exact however the
item or the incident changes, so that who sees an item is still who sees its incident.

These tests run on whichever database the suite uses (SQLite by default, PostgreSQL in CI): each
has its own triggers. The race at the end needs PostgreSQL.
"""

import threading

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection, connections, transaction
from django.urls import reverse

from postmortems import item_visibility
from postmortems.models import ActionItem, Incident
from tests.conftest import needs
from tests.factories import (
    make_action_item,
    make_incident,
    make_participant,
    make_team,
    make_user,
)
from tests.postmortems.test_incidents import edit_data

pytestmark = pytest.mark.django_db

INTERNAL = Incident.Visibility.INTERNAL
RESTRICTED = Incident.Visibility.RESTRICTED


def copy_of(item: ActionItem) -> str:
    return ActionItem.objects.values_list("incident_visibility", flat=True).get(pk=item.pk)


@pytest.mark.parametrize("visibility", [INTERNAL, RESTRICTED])
def test_a_new_item_copies_its_incidents_visibility(visibility):
    item = make_action_item(incident=make_incident(visibility=visibility))

    assert copy_of(item) == visibility


def test_the_application_cannot_write_the_copy():
    item = make_action_item(incident=make_incident(visibility=RESTRICTED))

    ActionItem.objects.filter(pk=item.pk).update(incident_visibility=INTERNAL)
    assert copy_of(item) == RESTRICTED
    item.incident_visibility = INTERNAL
    item.save()
    assert copy_of(item) == RESTRICTED
    forged = ActionItem.objects.create(
        incident=item.incident,
        title="Forged",
        created_by=item.created_by,
        incident_visibility=INTERNAL,
    )
    assert copy_of(forged) == RESTRICTED


def test_an_item_moved_to_another_incident_copies_the_new_ones_visibility():
    item = make_action_item(incident=make_incident(visibility=INTERNAL))

    ActionItem.objects.filter(pk=item.pk).update(incident=make_incident(visibility=RESTRICTED))

    assert copy_of(item) == RESTRICTED


def test_a_queryset_update_of_incidents_reaches_their_items_and_no_others():
    first, second, untouched = (make_incident(visibility=INTERNAL) for _ in range(3))
    items = [make_action_item(incident=incident) for incident in (first, first, second)]
    bystander = make_action_item(incident=untouched)

    Incident.objects.filter(pk__in=[first.pk, second.pk]).update(visibility=RESTRICTED)

    assert [copy_of(item) for item in items] == [RESTRICTED] * 3
    assert copy_of(bystander) == INTERNAL


def test_an_item_saved_before_its_incident_exists_takes_its_visibility_when_it_arrives():
    """As a restore may load them, in one transaction: both databases check these foreign keys
    at commit."""
    facilitator = make_user(is_facilitator=True)
    with transaction.atomic():
        item = ActionItem.objects.create(
            incident_id=987654, title="Loaded first", created_by=facilitator
        )
        assert copy_of(item) == RESTRICTED  # nothing to copy yet: hidden, never shown
        Incident.objects.create(
            pk=987654, title="Loaded second", created_by=facilitator, visibility=INTERNAL
        )

    assert copy_of(item) == INTERNAL


def test_restricting_an_incident_in_its_form_hides_its_items_from_outsiders(client):
    """Through the real edit form: a team manager who is not a participant sees the item while
    the incident is internal, gets a 404 once it is restricted, and sees it again after."""
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator, visibility=INTERNAL)
    owner = make_participant(incident=incident).user
    manager = make_user()
    team = make_team(members=[owner], managers=[manager])
    item = make_action_item(
        incident=incident, owner=owner, team=team, title="Page on replica lag above 30 seconds"
    )
    review = reverse("postmortems:action_item_review") + "?team=mine"

    def manager_sees() -> tuple[int, bool]:
        client.force_login(manager)
        detail = client.get(item.get_absolute_url()).status_code
        listed = item.title in client.get(review).content.decode()
        return detail, listed

    def set_visibility(visibility: str) -> None:
        client.force_login(facilitator)
        incident.refresh_from_db()
        response = client.post(
            reverse("postmortems:incident_edit", args=[incident.pk]),
            edit_data(incident, visibility=visibility),
        )
        assert response.status_code == 302

    assert manager_sees() == (200, True)
    set_visibility(RESTRICTED)
    assert copy_of(item) == RESTRICTED
    assert manager_sees() == (404, False)
    client.force_login(owner)  # a participant still sees it
    assert client.get(item.get_absolute_url()).status_code == 200
    set_visibility(INTERNAL)
    assert manager_sees() == (200, True)


def test_migrate_puts_back_triggers_a_table_rebuild_dropped():
    """SQLite drops a table's triggers when a migration rebuilds the table."""
    wanted = set(item_visibility.TRIGGERS[connection.vendor])
    assert item_visibility.installed(connection) == wanted
    item_visibility.uninstall(connection)
    assert item_visibility.installed(connection) == set()

    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)

    assert item_visibility.installed(connection) == wanted
    item = make_action_item(incident=make_incident(visibility=RESTRICTED))
    assert copy_of(item) == RESTRICTED


@pytest.mark.django_db(transaction=True)
def test_an_item_saved_while_its_incident_is_being_restricted_comes_out_restricted():
    """Two connections on PostgreSQL. One restricts the incident and has not committed; the
    other adds an item meanwhile. The item must wait for the change and copy its outcome: had it
    copied "internal" from before the change, every manager would see it."""
    needs(connection.vendor == "postgresql", "this race needs PostgreSQL")
    incident = make_incident(visibility=INTERNAL)
    facilitator = incident.created_by
    restricted, added = threading.Event(), {}

    def add_item() -> None:
        try:
            restricted.wait(10)
            added["item"] = make_action_item(incident=incident, created_by=facilitator)
        finally:
            connections.close_all()

    adder = threading.Thread(target=add_item)
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(visibility=RESTRICTED)
        adder.start()
        restricted.set()
        adder.join(0.5)
        assert adder.is_alive(), "the item was saved without waiting for the incident's change"
    adder.join(10)

    assert copy_of(added["item"]) == RESTRICTED
