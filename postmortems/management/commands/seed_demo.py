from django.core.management.base import BaseCommand
from django.db import transaction

from postmortems import demo


class Command(BaseCommand):
    help = "Load demo people, teams, incidents and accounts for the embedded run (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            created = demo.seed()
        if created:
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        else:
            self.stdout.write("Demo data already present.")
        self.stdout.write(f"\nDemo sign-ins (password for all: {demo.PASSWORD}):")
        for email, role in demo.SIGN_INS:
            self.stdout.write(f"  {email:<28} {role}")
