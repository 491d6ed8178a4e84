import pytest
from django.core.management import call_command

from accounts.models import User
from postmortems import demo
from postmortems.models import Incident, TimelineEntry

pytestmark = pytest.mark.django_db


def test_demo_data_loads_once_and_every_demo_sign_in_works():
    call_command("seed_demo")
    call_command("seed_demo")

    assert User.objects.count() == len(demo.PEOPLE)
    for email, _role in demo.SIGN_INS:
        assert User.objects.get(email=email).check_password(demo.PASSWORD)


def test_the_demo_incident_is_told_by_three_or_more_people_with_a_private_draft():
    call_command("seed_demo")

    incident = Incident.objects.get(title__startswith="Checkout payments failing")
    shared = incident.entries.filter(state=TimelineEntry.State.SHARED)
    assert shared.values("author").distinct().count() >= 3
    assert incident.entries.filter(state=TimelineEntry.State.DRAFT).count() == 1
