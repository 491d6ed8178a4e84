"""Backup and restore (docs/backup.md): export everything, restore into an empty database, and
find every row as it was, on SQLite and on PostgreSQL (run the suite with DATABASE_URL)."""

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models
from django.utils import timezone

from accounts import invitations
from accounts.models import User
from postmortems import demo
from postmortems.deliveries import Key, defer
from postmortems.management.commands.export_data import exported_models
from postmortems.models import (
    ActionItem,
    ActionItemChange,
    Delivery,
    Incident,
    IncidentChange,
    PostmortemRevision,
    TimelineEntry,
    TimelineEntryRevision,
)

# Rebuilt by migrate, so compared by natural key: their ids may differ in a new database.
REBUILT = {ContentType, Permission}


def fill_what_the_demo_leaves_empty() -> None:
    """A row in every table the demo does not touch, with the awkward values a backup must keep."""
    admin = User.objects.get(email="admin@example.com")
    mara = User.objects.get(email="mara@example.com")
    group = Group.objects.create(name="Auditors")
    group.permissions.add(Permission.objects.get(codename="view_incident"))
    mara.groups.add(group)
    mara.user_permissions.add(Permission.objects.get(codename="change_incident"))
    invitations.invite("newcomer@example.com", invited_by=mara, display_name="New Comer")
    incident = Incident.objects.order_by("pk").first()
    LogEntry.objects.log_actions(admin.pk, [incident], ADDITION, change_message="[]")
    entry = TimelineEntry.objects.filter(incident=incident).first()
    TimelineEntryRevision.objects.create(entry=entry, version=entry.version, data=entry.snapshot())
    TimelineEntry.objects.filter(pk=entry.pk).update(
        version=entry.version + 1,
        # Every kind of character a person may type, and a time with its microseconds.
        action="Rolled back “v2” → v1, 漢字, emoji 🚀, quotes \" ' and a\nnew line",
        occurred_at=timezone.now() - timedelta(hours=3, microseconds=123457),
    )
    IncidentChange.objects.create(
        incident=incident, changed_by=mara, changes={"title": ["Old title", incident.title]}
    )
    item = ActionItem.objects.order_by("pk").first()
    ActionItemChange.objects.create(
        action_item=item, by=mara, field="status", old_value="open", new_value="done"
    )
    postmortem = incident.postmortem
    if not PostmortemRevision.objects.filter(postmortem=postmortem).exists():
        PostmortemRevision.objects.create(
            postmortem=postmortem, version=1, edited_by=mara, data=postmortem.section_data()
        )
    defer([Key(Delivery.Kind.ACCOUNT_REQUEST, mara.pk, "participant:1")], "test row")
    Delivery.objects.create(
        kind=Delivery.Kind.WEEKLY_DIGEST,
        recipient=admin,
        period="2026-11-23",
        status=Delivery.Status.SENT,
        message_id="<delivery-x@localhost>",
        sent_at=timezone.now(),
    )


def compared_models() -> list[type[models.Model]]:
    """Every exported model, and the many-to-many tables that travel inside them."""
    found = []
    for model in exported_models():
        found.append(model)
        for field in model._meta.local_many_to_many:
            if field.remote_field.through._meta.auto_created:
                found.append(field.remote_field.through)
    return found


def _natural(value, target):
    if value is None:
        return None
    return target._default_manager.get(pk=value).natural_key()


def snapshot() -> dict[str, list]:
    """Every row of every compared table, as values, sorted; rebuilt tables by natural key."""
    state = {}
    for model in compared_models():
        rebuilt = {
            f.attname: f.related_model
            for f in model._meta.concrete_fields
            if f.is_relation and f.related_model in REBUILT
        }
        rows = []
        for row in model._base_manager.values():
            for name, target in rebuilt.items():
                row[name] = _natural(row[name], target)
            if model._meta.auto_created:
                del row["id"]  # a link row's own id means nothing and is not exported
            rows.append(sorted(row.items(), key=lambda kv: kv[0]))
        state[model._meta.label] = sorted(rows, key=repr)
    return state


def empty_the_database() -> None:
    # What a new, migrated database holds: nothing but content types and permissions.
    call_command("flush", "--noinput", verbosity=0)
    assert not User.objects.exists() and not Incident.objects.exists()
    assert ContentType.objects.exists() and Permission.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_export_then_import_into_an_empty_database_keeps_every_row(tmp_path, trust_figures):
    from django.db import connection

    demo.seed()
    fill_what_the_demo_leaves_empty()
    before = snapshot()
    empty = sorted(label for label, rows in before.items() if not rows)
    assert empty == [], f"tables the test leaves empty, so proves nothing about: {empty}"
    backup = tmp_path / "backup.json"

    call_command("export_data", str(backup), verbosity=0)
    empty_the_database()
    call_command("import_data", str(backup), verbosity=0)

    after = snapshot()
    differing = [label for label in before if before[label] != after[label]]
    rows = sum(len(r) for r in before.values())
    trust_figures(
        f"backup round trip ({connection.vendor})",
        tables=len(before),
        rows=rows,
        differing_tables=len(differing),
        lost_rows=sum(max(0, len(before[x]) - len(after[x])) for x in before),
    )
    assert differing == []
    # The sequences moved past the restored ids: new rows do not collide with old ones.
    mara = User.objects.get(email="mara@example.com")
    incident = Incident.objects.create(title="After the restore", created_by=mara)
    assert incident.pk > max(
        pk for pk in Incident.objects.exclude(pk=incident.pk).values_list("pk", flat=True)
    )
    assert mara.check_password(demo.PASSWORD)


def test_the_export_names_no_session_no_sign_in_attempt_no_permission_row_no_counter(db, tmp_path):
    demo.seed()
    backup = tmp_path / "backup.json"

    call_command("export_data", str(backup), verbosity=0)

    labels = {row["model"] for row in json.loads(backup.read_text())}
    assert {"accounts.user", "accounts.team", "postmortems.incident"} <= labels
    assert not {label for label in labels if label.split(".")[0] in {"sessions", "axes"}}
    assert not labels & {"auth.permission", "contenttypes.contenttype"}
    assert "postmortems.changecounter" not in labels  # each database starts its own
    assert not (tmp_path / "backup.json.partial").exists()


def test_import_refuses_a_database_that_is_in_use(db, tmp_path):
    demo.seed()
    backup = tmp_path / "backup.json"
    call_command("export_data", str(backup), verbosity=0)
    users = User.objects.count()

    with pytest.raises(CommandError, match="empty database"):
        call_command("import_data", str(backup), verbosity=0)

    assert User.objects.count() == users


def test_a_broken_backup_file_restores_nothing(transactional_db, tmp_path):
    demo.seed()
    backup = tmp_path / "backup.json"
    call_command("export_data", str(backup), verbosity=0)
    rows = json.loads(backup.read_text())
    rows.append({"model": "postmortems.incident", "pk": 10**6, "fields": {"title": None}})
    backup.write_text(json.dumps(rows))
    call_command("flush", "--noinput", verbosity=0)

    with pytest.raises(Exception):  # noqa: B017 - whichever error the database raises
        call_command("import_data", str(backup), verbosity=0)

    assert not User.objects.exists() and not Incident.objects.exists()


def test_every_model_of_the_project_is_exported_but_the_change_counter():
    exported = {model._meta.label for model in exported_models()}
    for label in ("accounts", "postmortems"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.label != "postmortems.ChangeCounter":
                assert model._meta.label in exported
    assert "postmortems.ChangeCounter" not in exported
