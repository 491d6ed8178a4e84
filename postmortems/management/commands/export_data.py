"""Export everything worth keeping to one JSON file: people, teams, incidents and all that hangs
off them, the delivery ledger. `import_data` restores it into an empty database (docs/backup.md).

The file is a standard Django fixture (`loaddata` reads it). It differs from `dumpdata` output in
one way: times keep their microseconds, where Django's JSON encoder cuts them to milliseconds.
"""

import datetime
import os
from contextlib import contextmanager

from django.apps import apps
from django.core import serializers
from django.core.management.base import BaseCommand
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

# Rebuilt by `migrate` (content types, permissions, the change counter, which each database
# starts afresh) or transient (sessions: everyone signs in again; django-axes' sign-in attempts).
# Everything else is exported.
EXCLUDED_APPS = {"contenttypes", "sessions", "axes"}
EXCLUDED_MODELS = {"auth.permission", "postmortems.changecounter"}


class FullPrecisionEncoder(DjangoJSONEncoder):
    """Datetimes and times with their microseconds, so a restore changes no value at all."""

    def default(self, o):
        if isinstance(o, datetime.datetime):
            text = o.isoformat()
            return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
        if isinstance(o, datetime.time):
            return o.isoformat()
        return super().default(o)


def exported_models() -> list:
    """Every concrete model outside the exclusions, in an order that loads (people first)."""
    app_list = [
        (config, None) for config in apps.get_app_configs() if config.label not in EXCLUDED_APPS
    ]
    return [
        model
        for model in serializers.sort_dependencies(app_list, allow_cycles=True)
        if not model._meta.proxy and model._meta.label_lower not in EXCLUDED_MODELS
    ]


@contextmanager
def snapshot():
    """One consistent view of every table, while the app goes on writing."""
    # dumpdata reads table after table: an incident saved in between could appear without its
    # participants. One read-only REPEATABLE READ transaction (PostgreSQL) or one read
    # transaction (SQLite) sees the database as of its first read.
    nested = connection.in_atomic_block  # e.g. a test's: its transaction already sees one view
    with transaction.atomic():
        if connection.vendor == "postgresql" and not nested:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _rows(models):
    for model in models:
        yield from model._base_manager.order_by(model._meta.pk.name).iterator()


class Command(BaseCommand):
    help = "Write every domain row to a JSON file that `import_data` restores (docs/backup.md)."

    def add_arguments(self, parser):
        parser.add_argument("output", help="The JSON file to write.")

    def handle(self, *args, output: str, **options):
        models = exported_models()
        # Written beside the target and renamed at the end: a failed export leaves no file that
        # looks like a backup.
        partial = f"{output}.partial"
        with open(partial, "w", encoding="utf-8") as stream, snapshot():
            # Foreign keys to people, permissions and content types are written as natural keys
            # (email address; app and codename), so they resolve in a freshly migrated database.
            serializers.serialize(
                "json",
                _rows(models),
                stream=stream,
                indent=1,
                use_natural_foreign_keys=True,
                cls=FullPrecisionEncoder,
            )
        os.replace(partial, output)
        if options["verbosity"]:
            self.stdout.write(f"Exported {len(models)} tables to {output}.")
