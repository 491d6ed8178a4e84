"""The review meeting: times in the organiser's zone, the invite, the .ics download."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from icalendar import Calendar

from postmortems.models import Incident, Participant, ReviewMeeting
from postmortems.services import writeups as services
from tests.factories import make_incident, make_participant, make_review_meeting, make_user


def meeting_url(incident) -> str:
    return reverse("postmortems:meeting_edit", args=[incident.pk])


@pytest.fixture
def facilitator():
    return make_user(is_facilitator=True, time_zone="Europe/Paris", display_name="Fran")


@pytest.fixture
def incident(facilitator):
    return make_incident(facilitator=facilitator, title="Checkout errors")


def post_data(**changes) -> dict:
    data = {
        "starts_at": "2031-03-10T14:00",
        "duration_minutes": "90",
        "location": "Room 4",
        "video_url": "https://meet.example.com/review",
        "attendees": [],
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_participants_are_preselected_as_attendees(client, incident, facilitator):
    responder = make_participant(incident=incident).user
    make_user(display_name="Not Involved")
    client.force_login(facilitator)

    form = client.get(meeting_url(incident)).context["form"]

    assert set(form.initial["attendees"]) == {facilitator.pk, responder.pk}


@pytest.mark.django_db
def test_the_time_is_read_in_the_organisers_zone_and_stored_in_utc(
    client, incident, facilitator, django_capture_on_commit_callbacks
):
    client.force_login(facilitator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(meeting_url(incident), post_data(attendees=[facilitator.pk]))

    assert response.status_code == 302
    meeting = ReviewMeeting.objects.get(incident=incident)
    assert meeting.starts_at == datetime(2031, 3, 10, 13, 0, tzinfo=UTC)  # 14:00 in Paris (CET)
    assert meeting.organiser == facilitator
    assert meeting.sequence == 0
    assert list(meeting.attendees.all()) == [facilitator]
    assert len(callbacks) == 1  # the invite is enqueued after the commit


@pytest.mark.django_db
def test_changing_the_meeting_bumps_the_sequence_and_sends_the_update(
    client, incident, facilitator, django_capture_on_commit_callbacks
):
    meeting = make_review_meeting(incident=incident, organiser=facilitator)
    client.force_login(facilitator)

    form = client.get(meeting_url(incident)).context["form"]
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(meeting_url(incident), post_data(starts_at="2031-03-11T09:30"))

    meeting.refresh_from_db()
    assert meeting.sequence == 1
    assert meeting.starts_at == datetime(2031, 3, 11, 8, 30, tzinfo=UTC)
    assert len(callbacks) == 1
    assert "In your time zone (Europe/Paris)" in form["starts_at"].help_text


@pytest.mark.django_db
def test_a_video_link_must_be_http_or_https(client, incident, facilitator):
    client.force_login(facilitator)

    response = client.post(meeting_url(incident), post_data(video_url="ftp://files.example.com/x"))

    assert response.status_code == 400
    assert "Use an http:// or https:// link." in response.content.decode()
    assert not ReviewMeeting.objects.exists()


@pytest.mark.django_db
def test_a_missing_date_keeps_what_was_typed_and_says_what_is_wrong(client, incident, facilitator):
    client.force_login(facilitator)

    response = client.post(meeting_url(incident), post_data(starts_at="", location="Big room"))

    assert response.status_code == 400
    assert "Big room" in response.content.decode()
    assert not ReviewMeeting.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("visibility", list(Incident.Visibility))
def test_only_the_incidents_participants_can_be_invited(client, facilitator, visibility):
    incident = make_incident(facilitator=facilitator, visibility=visibility)
    outsider = make_user(display_name="Out Sider")
    client.force_login(facilitator)

    response = client.post(meeting_url(incident), post_data(attendees=[outsider.pk]))

    assert response.status_code == 400
    assert "add them to the incident as participants first" in response.content.decode()
    assert not ReviewMeeting.objects.exists()


@pytest.mark.django_db
def test_the_attendee_list_holds_the_incidents_people_not_everyone(client, incident, facilitator):
    responder = make_participant(incident=incident).user
    make_user(display_name="Not Involved")
    client.force_login(facilitator)

    form = client.get(meeting_url(incident)).context["form"]

    assert set(form.fields["attendees"].queryset) == {facilitator, responder}


@pytest.mark.django_db
def test_someone_invited_then_removed_from_a_restricted_incident_must_be_dropped(
    client, facilitator
):
    incident = make_incident(facilitator=facilitator, visibility=Incident.Visibility.RESTRICTED)
    former = make_participant(incident=incident, user=make_user(display_name="Former"))
    make_review_meeting(incident=incident, organiser=facilitator, attendees=[former.user])
    former.delete()
    client.force_login(facilitator)

    form = client.get(meeting_url(incident)).context["form"]
    response = client.post(meeting_url(incident), post_data(attendees=[former.user.pk]))

    # Still listed, so the facilitator sees who is dropped, but no longer allowed.
    assert former.user in form.fields["attendees"].queryset
    assert response.status_code == 400
    assert "add them as participants first: Former" in response.content.decode()


@pytest.mark.django_db
def test_the_ics_parses_back_with_a_stable_uid_and_utc_times(client, incident, facilitator):
    attendee = make_user(email="ana@example.com", display_name='Ana "the DBA"')
    make_participant(incident=incident, user=attendee, role=Participant.Role.RESPONDER)
    starts = datetime(2031, 3, 10, 13, 0, tzinfo=UTC)
    meeting = make_review_meeting(
        incident=incident,
        organiser=facilitator,
        starts_at=starts,
        duration_minutes=90,
        location="Room 4",
        video_url="https://meet.example.com/review",
        attendees=[attendee, facilitator],
        sequence=3,
    )
    client.force_login(attendee)

    response = client.get(reverse("postmortems:meeting_ics", args=[incident.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert f'filename="{incident.human_id}-review.ics"' in response["Content-Disposition"]
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["UID"]) == f"meeting-{meeting.pk}@testserver"
    assert event.decoded("DTSTART") == starts
    assert event.decoded("DTEND") == starts + timedelta(minutes=90)
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert str(event["SUMMARY"]) == f"Postmortem review: {incident.human_id} Checkout errors"
    assert str(event["LOCATION"]) == "Room 4"
    assert str(event["URL"]) == "https://meet.example.com/review"
    assert f"http://testserver/incidents/{incident.pk}/" in str(event["DESCRIPTION"])
    assert int(event["SEQUENCE"]) == 3
    assert "DTSTAMP" in event
    assert str(event["ORGANIZER"]) == f"mailto:{facilitator.email}"
    attendees = event["ATTENDEE"]
    assert {str(a) for a in attendees} == {"mailto:ana@example.com", f"mailto:{facilitator.email}"}
    assert all("CN" in a.params for a in attendees)


@pytest.mark.django_db
def test_the_uid_stays_the_same_when_the_meeting_moves(incident, facilitator):
    meeting = make_review_meeting(incident=incident)
    first = Calendar.from_ical(services.meeting_ics(meeting)).walk("VEVENT")[0]
    meeting.starts_at += timedelta(days=1)
    meeting.sequence += 1
    meeting.save()
    second = Calendar.from_ical(services.meeting_ics(meeting)).walk("VEVENT")[0]

    assert first["UID"] == second["UID"]
    assert int(second["SEQUENCE"]) == int(first["SEQUENCE"]) + 1


@pytest.mark.django_db
def test_there_is_no_ics_before_a_meeting_is_set(client, incident, facilitator):
    client.force_login(facilitator)

    response = client.get(reverse("postmortems:meeting_ics", args=[incident.pk]))

    assert response.status_code == 404
