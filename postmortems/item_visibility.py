"""Each action item's copy of its incident's visibility (ActionItem.incident_visibility), kept by
the database.

Who may see an action item is who may see its incident (access.visible_action_items). Asked
through the incident, the review checked every one of a manager's open items against the
incidents table, twice a page; with the visibility on the item, the check is a column of the row
already read. The copy is only as safe as it is exact, so the application never writes it:

- before an item is inserted, or its incident changes, the database copies the incident's
  visibility onto it (an incident that cannot be read gives "restricted": a fault hides, it never
  shows);
- after an incident's visibility changes, the database copies it onto all its items, whatever
  made the change (a form, the admin, a queryset update); and after an incident is inserted,
  onto any item already pointing at it (a restore may load items first: PostgreSQL checks
  foreign keys at commit).

On PostgreSQL the item's trigger reads the incident FOR SHARE: an item saved while its incident's
visibility is being changed waits for that change and copies its outcome, and a change waits for
the items being saved (READ COMMITTED then lets the incident's trigger see them).

The triggers are created by the migration that added the column and again after every `migrate`
(apps.py): SQLite rebuilds a table to alter it, and a rebuilt table has lost its triggers.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

ITEMS = "postmortems_actionitem"
INCIDENTS = "postmortems_incident"
FAULT = "restricted"  # what an item gets when its incident cannot be read (its field default)

_POSTGRESQL = (
    f"""
CREATE OR REPLACE FUNCTION postmortems_copy_incident_visibility()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT visibility INTO NEW.incident_visibility FROM {INCIDENTS}
        WHERE id = NEW.incident_id FOR SHARE;
    NEW.incident_visibility := coalesce(NEW.incident_visibility, '{FAULT}');
    RETURN NEW;
END;
$$
""",
    f"""
CREATE OR REPLACE TRIGGER action_item_visibility_on_write
    BEFORE INSERT OR UPDATE OF incident_id, incident_visibility ON {ITEMS}
    FOR EACH ROW EXECUTE FUNCTION postmortems_copy_incident_visibility()
""",
    f"""
CREATE OR REPLACE FUNCTION postmortems_spread_incident_visibility()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.visibility IS NOT DISTINCT FROM NEW.visibility THEN
        RETURN NULL;
    END IF;
    UPDATE {ITEMS} SET incident_visibility = NEW.visibility WHERE incident_id = NEW.id;
    RETURN NULL;
END;
$$
""",
    f"""
CREATE OR REPLACE TRIGGER incident_visibility_on_change
    AFTER INSERT OR UPDATE OF visibility ON {INCIDENTS} FOR EACH ROW
    EXECUTE FUNCTION postmortems_spread_incident_visibility()
""",
)

# SQLite cannot change the row being inserted, so its triggers update the row just written. A
# trigger does not fire itself again (recursive_triggers is off, SQLite's default).
_SQLITE_COPY = f"""
    UPDATE {ITEMS} SET incident_visibility = coalesce(
        (SELECT visibility FROM {INCIDENTS} WHERE id = NEW.incident_id), '{FAULT}'
    ) WHERE id = NEW.id;
"""
_SQLITE_SPREAD = f"""
    UPDATE {ITEMS} SET incident_visibility = NEW.visibility WHERE incident_id = NEW.id;
"""
_SQLITE = (
    f"""
CREATE TRIGGER IF NOT EXISTS action_item_visibility_on_insert AFTER INSERT ON {ITEMS}
BEGIN {_SQLITE_COPY} END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS action_item_visibility_on_update
    AFTER UPDATE OF incident_id, incident_visibility ON {ITEMS}
BEGIN {_SQLITE_COPY} END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS incident_visibility_on_insert AFTER INSERT ON {INCIDENTS}
BEGIN {_SQLITE_SPREAD} END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS incident_visibility_on_change
    AFTER UPDATE OF visibility ON {INCIDENTS}
    WHEN OLD.visibility IS NOT NEW.visibility
BEGIN {_SQLITE_SPREAD} END
""",
)

# Each trigger, by name, with its table; and PostgreSQL's functions behind them.
TRIGGERS = {
    "postgresql": {
        "action_item_visibility_on_write": ITEMS,
        "incident_visibility_on_change": INCIDENTS,
    },
    "sqlite": {
        "action_item_visibility_on_insert": ITEMS,
        "action_item_visibility_on_update": ITEMS,
        "incident_visibility_on_insert": INCIDENTS,
        "incident_visibility_on_change": INCIDENTS,
    },
}
_FUNCTIONS = ("postmortems_copy_incident_visibility", "postmortems_spread_incident_visibility")

# Every item's copy that differs from its incident's visibility, set right: the migration's
# backfill. Rewriting only those rows, not all, is what makes it quick.
_INCIDENTS_VISIBILITY = f"""coalesce(
    (SELECT i.visibility FROM {INCIDENTS} i WHERE i.id = {ITEMS}.incident_id), '{FAULT}'
)"""
COPY_ALL = f"""
    UPDATE {ITEMS} SET incident_visibility = {_INCIDENTS_VISIBILITY}
    WHERE incident_visibility <> {_INCIDENTS_VISIBILITY}
"""


def _statements(connection: BaseDatabaseWrapper) -> tuple[str, ...]:
    statements = {"postgresql": _POSTGRESQL, "sqlite": _SQLITE}.get(connection.vendor)
    if statements is None:
        raise NotImplementedError(
            f"Action items' visibility is kept by triggers written for PostgreSQL and SQLite, "
            f"not {connection.vendor}."
        )
    return statements


def install(connection: BaseDatabaseWrapper) -> None:
    """Create the triggers, or replace them as they are written here (safe to repeat)."""
    with connection.cursor() as cursor:
        for statement in _statements(connection):
            cursor.execute(statement)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for name, table in TRIGGERS.get(connection.vendor, {}).items():
            cursor.execute(
                f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgresql else "")
            )
        for function in _FUNCTIONS if postgresql else ():
            cursor.execute(f"DROP FUNCTION IF EXISTS {function}()")


def installed(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of this module's triggers the database holds."""
    listing = {
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(listing)
        return {name for (name,) in cursor.fetchall()} & TRIGGERS[connection.vendor].keys()
