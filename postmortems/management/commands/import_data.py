"""Restore an `export_data` file into an empty, migrated database (docs/backup.md)."""

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User


class Command(BaseCommand):
    help = "Load an export_data file into an empty, migrated database, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("input", help="The JSON file export_data wrote.")

    def handle(self, *args, input: str, **options):
        # loaddata overwrites rows that share a primary key: into a database in use, it would
        # quietly mix two histories. Restores go into an empty one.
        if User.objects.exists():
            raise CommandError(
                "This database already has people in it. Restore into an empty database: "
                "create it, run `manage.py migrate`, then `manage.py import_data FILE`."
            )
        # One transaction: a file that fails halfway leaves the database empty, not half full.
        with transaction.atomic():
            call_command("loaddata", input, verbosity=0)
        counts = {
            model._meta.label: model._default_manager.count()
            for label in ("accounts", "postmortems")
            for model in apps.get_app_config(label).get_models()
        }
        if options["verbosity"]:
            for label, count in counts.items():
                self.stdout.write(f"{label:<36} {count:>8}")
            total = sum(counts.values())
            self.stdout.write(self.style.SUCCESS(f"Restored {total} rows from {input}."))
