"""The change counter: a number the database raises once for every transaction that writes to a
table a page shows (ChangeCounter's one row), whatever makes the change: a form, the admin, a
queryset update, a task, a restore.

A page rendered while the number stood at N shows what the database held at N or later, so it can
be served again, as it is, for as long as the number is still N (postmortems/kept_pages.py).

On PostgreSQL the count is taken when the transaction commits (a deferred constraint trigger), not
when it writes: writers would otherwise queue behind each other on the counter's row from their
first write to their commit, and two of them that also lock rows of their own could deadlock.
Taken at commit, the row is held only while that commit finishes, and the number and the writes
become visible together. The trigger fires for each row written but raises the number once per
transaction (a transaction-local setting remembers that it did).

Watched: every table of the `accounts` and `postmortems` apps, many-to-many tables included,
except the deliveries ledger (written by the reminder and digest tasks, shown on no page) and the
counter itself. A new model is watched without anyone remembering to add it. The triggers are
created after every `migrate` (apps.py), which also puts the counter's row back after a flush.
"""

import secrets

from django.apps.registry import Apps
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from postmortems.models.change_counter import ChangeCounter

COUNTER = ChangeCounter._meta.db_table
ROW = ChangeCounter.ROW
APPS = ("accounts", "postmortems")
UNWATCHED = {("postmortems", "Delivery"), ("postmortems", "ChangeCounter")}

# PostgreSQL: a trigger's name is per table, so every table's trigger has the same name.
_PG_FUNCTION = "postmortems_count_change"
_PG_TRIGGER = "count_change_at_commit"
_PG_TRUNCATE_TRIGGER = "count_change_on_truncate"
# SQLite: one namespace for all triggers, so the table is in each name.
_SQLITE_PREFIX = "count_change_"
_SQLITE_EVENTS = ("insert", "update", "delete")

_PG_SETUP = (
    f"""
CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction: the later rows' calls find the mark and stop here.
    IF current_setting('postmortems.counted_in', true) = txid_current()::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('postmortems.counted_in', txid_current()::text, true);
    UPDATE {COUNTER} SET number = number + 1 WHERE id = {ROW};
    RETURN NULL;
END;
$$
""",
)


def watched_tables(apps: Apps) -> list[str]:
    """Every table of APPS in the models of `apps` (the migrated state, or the project's), with
    their many-to-many tables, less UNWATCHED."""
    tables = set()
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            if (label, model.__name__) in UNWATCHED or not model._meta.managed:
                continue
            tables.add(model._meta.db_table)
            for field in model._meta.local_many_to_many:
                through = field.remote_field.through
                if through._meta.auto_created:
                    tables.add(through._meta.db_table)
    return sorted(tables)


def _pg_statements(table: str) -> list[str]:
    return [
        f"""CREATE CONSTRAINT TRIGGER {_PG_TRIGGER}
            AFTER INSERT OR UPDATE OR DELETE ON {table}
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()""",
        # TRUNCATE has no rows to fire for; it locks the whole table anyway.
        f"""CREATE OR REPLACE TRIGGER {_PG_TRUNCATE_TRIGGER}
            AFTER TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()""",
    ]


def _sqlite_statements(table: str) -> list[str]:
    # SQLite lets one connection write at a time, so there is no queue to avoid: each row counts.
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {_SQLITE_PREFIX}{table}_{event}
            AFTER {event.upper()} ON {table}
            BEGIN UPDATE {COUNTER} SET number = number + 1 WHERE id = {ROW}; END"""
        for event in _SQLITE_EVENTS
    ]


def install(connection: BaseDatabaseWrapper, apps: Apps) -> None:
    """The counter's row if it is missing, and a trigger on every watched table that lacks one;
    a table no longer watched loses its trigger. Safe to repeat, and in one transaction, so no
    write commits uncounted meanwhile. A table that has its trigger is not touched: dropping a
    trigger locks its table against every reader. (A change to the triggers' definition needs
    a migration that runs uninstall, then install.)"""
    if connection.vendor == "postgresql":
        setup, per_table = _PG_SETUP, _pg_statements
    elif connection.vendor == "sqlite":
        setup, per_table = (), _sqlite_statements
    else:
        raise NotImplementedError(
            f"The change counter is kept by triggers written for PostgreSQL and SQLite, "
            f"not {connection.vendor}."
        )
    watched = watched_tables(apps)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # A new counter starts at a random number, not at 0: processes still holding pages kept
        # from another database (before a restore, say) never find their numbers again.
        cursor.execute(
            f"INSERT INTO {COUNTER} (id, number) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
            [ROW, secrets.randbits(48)],
        )
        for statement in setup:
            cursor.execute(statement)
        present = set(installed(connection))
        for table in present - set(watched):
            _drop(cursor, connection.vendor, table)
        for table in watched:
            if table not in present:
                for statement in per_table(table):
                    cursor.execute(statement)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for table in installed(connection):
            _drop(cursor, connection.vendor, table)
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")


def _drop(cursor, vendor: str, table: str) -> None:
    if vendor == "postgresql":
        cursor.execute(f"DROP TRIGGER IF EXISTS {_PG_TRIGGER} ON {table}")
        cursor.execute(f"DROP TRIGGER IF EXISTS {_PG_TRUNCATE_TRIGGER} ON {table}")
    else:
        for event in _SQLITE_EVENTS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {_SQLITE_PREFIX}{table}_{event}")


def installed(connection: BaseDatabaseWrapper) -> list[str]:
    """The tables that have the counting trigger."""
    listing = {
        "postgresql": (
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            f"WHERE t.tgname = '{_PG_TRIGGER}'"
        ),
        "sqlite": (
            "SELECT DISTINCT tbl_name FROM sqlite_master "
            f"WHERE type = 'trigger' AND name LIKE '{_SQLITE_PREFIX}%'"
        ),
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(listing)
        return sorted(name for (name,) in cursor.fetchall())


def current(connection: BaseDatabaseWrapper) -> int | None:
    """The number now, or None where there is no counter (a database flushed and not yet
    migrated again): then nothing may be kept."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT number FROM {COUNTER} WHERE id = %s", [ROW])
        row = cursor.fetchone()
    return row[0] if row else None
