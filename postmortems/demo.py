"""Demo data for `make run`: people in every role, teams, and (as areas land) their stories.

Idempotent: running it twice changes nothing. Never used in production.
"""

from accounts.models import Team, User

PASSWORD = "postmortem-demo"

# (email, display name, time zone, is_facilitator, is_superuser)
PEOPLE = [
    ("admin@example.com", "Ada Admin", "Europe/London", False, True),
    ("mara@example.com", "Mara Facilitator", "Europe/London", True, False),
    ("tim@example.com", "Tim Facilitator", "America/New_York", True, False),
    ("andy@example.com", "Andy Engineer", "Europe/Berlin", False, False),
    ("amita@example.com", "Amita Engineer", "Asia/Kolkata", False, False),
    ("mei@example.com", "Mei Engineer", "America/Los_Angeles", False, False),
    ("irene@example.com", "Irene Manager", "Europe/Berlin", False, False),
    ("oscar@example.com", "Oscar Outsider", "UTC", False, False),
]

SIGN_INS = [
    ("admin@example.com", "admin (Django admin too)"),
    ("mara@example.com", "facilitator"),
    ("tim@example.com", "facilitator (a second one, to approve reviews)"),
    ("andy@example.com", "engineer, responder"),
    ("amita@example.com", "engineer, responder"),
    ("mei@example.com", "engineer, responder"),
    ("irene@example.com", "manager of Payments and Platform"),
    ("oscar@example.com", "signed-in person in no incident"),
]


def seed() -> bool:
    """Create the demo data if it is not there. Returns whether anything was created."""
    if User.objects.filter(email="mara@example.com").exists():
        return False
    people = {}
    for email, name, zone, is_facilitator, is_superuser in PEOPLE:
        user = User.objects.create_user(
            email,
            PASSWORD,
            display_name=name,
            time_zone=zone,
            is_facilitator=is_facilitator,
            is_superuser=is_superuser,
            is_staff=is_superuser,
        )
        people[email.split("@")[0]] = user
    payments = Team.objects.create(name="Payments")
    payments.members.add(people["andy"], people["amita"])
    payments.managers.add(people["irene"])
    platform = Team.objects.create(name="Platform")
    platform.members.add(people["mei"], people["mara"], people["tim"])
    platform.managers.add(people["irene"])
    return True
