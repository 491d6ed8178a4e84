import pytest
from django.urls import reverse

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_a_person_changes_their_name_zone_and_notifications(client):
    user = make_user()
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"),
        {"display_name": "Mara", "time_zone": "Asia/Kolkata", "notify_action_items": "on"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.time_zone) == ("Mara", "Asia/Kolkata")
    assert user.notify_action_items and not user.notify_weekly_digest


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Olympus_Mons", "Select a valid choice"),
        ("display_name", "x" * 151, "at most 150 characters"),
        ("display_name", "nul\x00byte", "Null characters are not allowed"),
    ],
)
def test_bad_profile_input_is_shown_back_with_the_reason(client, field, value, message):
    user = make_user(display_name="Before", time_zone="UTC")
    client.force_login(user)
    data = {"display_name": "After", "time_zone": "Europe/London", field: value}

    response = client.post(reverse("accounts:profile"), data)

    assert response.status_code == 200
    assert message in response.text
    user.refresh_from_db()
    assert (user.display_name, user.time_zone) == ("Before", "UTC")


def test_pages_use_the_viewers_time_zone(client):
    client.force_login(make_user(time_zone="Asia/Kolkata"))

    response = client.get(reverse("accounts:profile"))

    assert response.context["TIME_ZONE"] == "Asia/Kolkata"
