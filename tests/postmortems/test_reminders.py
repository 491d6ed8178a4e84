"""Reminder rules: each sent when due, not before, not after the work is done, and once."""

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from postmortems import reminders, tasks
from postmortems.models import Delivery, Participant, Postmortem, TimelineEntry
from postmortems.services.incidents import add_participant
from tests.factories import (
    make_action_item,
    make_entry,
    make_incident,
    make_participant,
    make_postmortem,
    make_review_meeting,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
Kind = Delivery.Kind


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def scan_at(moment: datetime) -> int:
    with at(moment):
        return reminders.scan()


def sent(outbox, to=None, kind=None) -> list:
    """Emails in the outbox, optionally only those to one person or of one kind."""
    kinds = {}
    if kind is not None:
        kinds = {
            d.message_id for d in Delivery.objects.filter(kind=kind, status=Delivery.Status.SENT)
        }
    return [
        m
        for m in outbox
        if (to is None or m.to == [to.email])
        and (kind is None or m.extra_headers["Message-ID"] in kinds)
    ]


def quiet_incident(**fields):
    """An incident whose facilitator has shared their account: no reminder of its own."""
    incident = make_incident(**fields)
    make_entry(incident=incident, author=incident.created_by)
    return incident


def html_of(message) -> str:
    return message.alternatives[0][0]


# --- Account request and reminder -------------------------------------------------------------


def add_responder(incident, moment=MONDAY, **fields):
    with at(moment):
        return Participant.objects.create(
            incident=incident,
            user=fields.pop("user", None) or make_user(**fields),
            role=Participant.Role.RESPONDER,
            added_by=incident.created_by,
            added_at=moment,
        )


def test_a_new_participant_is_asked_for_their_account_once(mailoutbox):
    incident = make_incident(title="Checkout errors")
    participant = add_responder(incident)

    tasks.send_account_request.delay(participant.pk)
    tasks.send_account_request.delay(participant.pk)

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [participant.user.email]
    assert "Checkout errors" in message.subject
    assert f"http://testserver/incidents/{incident.pk}/my-account/" in message.body
    assert Delivery.objects.get().kind == Kind.ACCOUNT_REQUEST


def test_adding_a_participant_asks_for_their_account_after_the_commit(
    mailoutbox, django_capture_on_commit_callbacks
):
    incident = make_incident()
    person = make_user()

    with django_capture_on_commit_callbacks(execute=True):
        add_participant(
            incident, user=person, role=Participant.Role.RESPONDER, by=incident.created_by
        )
        assert mailoutbox == []  # nothing before the commit

    assert [m.to for m in mailoutbox] == [[person.email]]


def test_a_person_who_added_themselves_is_not_asked(mailoutbox):
    incident = make_incident()
    facilitator = incident.participants.get()
    facilitator.added_by = facilitator.user
    facilitator.save()

    tasks.send_account_request.delay(facilitator.pk)

    assert mailoutbox == []


def test_account_reminder_comes_the_set_days_after_being_added_and_not_before(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
    participant = add_responder(incident)

    scan_at(MONDAY + timedelta(days=2) - timedelta(minutes=1))
    assert sent(mailoutbox, to=participant.user) == []

    scan_at(MONDAY + timedelta(days=2))
    scan_at(MONDAY + timedelta(days=2, minutes=15))

    reminder = sent(mailoutbox, to=participant.user)
    assert len(reminder) == 1
    assert reminder[0].subject.startswith("Reminder: your account of")
    assert (
        Delivery.objects.filter(kind=Kind.ACCOUNT_REMINDER, recipient=participant.user).count() == 1
    )


def test_no_account_reminder_once_something_is_shared(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
        participant = add_responder(incident)
        make_entry(incident=incident, author=participant.user, shared=True)

    scan_at(MONDAY + timedelta(days=2))

    assert sent(mailoutbox, to=participant.user) == []


def test_a_draft_alone_does_not_count_as_sharing(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
        participant = add_responder(incident)
        make_entry(incident=incident, author=participant.user, shared=False)

    scan_at(MONDAY + timedelta(days=2))

    assert len(sent(mailoutbox, to=participant.user)) == 1


def test_with_a_meeting_the_account_reminder_comes_the_set_hours_before_it(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
        make_review_meeting(incident=incident, starts_at=MONDAY + timedelta(days=6))
    participant = add_responder(incident)

    scan_at(MONDAY + timedelta(days=2))  # the days-after rule does not apply with a meeting
    assert sent(mailoutbox, to=participant.user) == []

    scan_at(MONDAY + timedelta(days=4))  # 48 hours before
    reminder = sent(mailoutbox, to=participant.user)
    assert len(reminder) == 1
    assert "review meeting is on" in reminder[0].body


def test_no_account_reminder_within_a_day_of_the_request(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
        make_review_meeting(incident=incident, starts_at=MONDAY + timedelta(hours=20))
    participant = add_responder(incident)

    scan_at(MONDAY + timedelta(hours=1))
    scan_at(MONDAY + timedelta(hours=19))

    assert sent(mailoutbox, to=participant.user) == []


def test_a_missed_account_reminder_is_caught_up_but_not_weeks_later(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
    late = add_responder(incident)
    stale = add_responder(incident, moment=MONDAY - timedelta(days=20))

    scan_at(MONDAY + timedelta(days=5))  # the worker was down for three days

    assert len(sent(mailoutbox, to=late.user)) == 1
    assert sent(mailoutbox, to=stale.user) == []


def test_no_account_reminders_for_observers_inactive_people_or_those_who_opted_out(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
    opted_out = add_responder(incident, notify_account_requests=False)
    inactive = add_responder(incident, is_active=False)
    observer = add_responder(incident)
    Participant.objects.filter(pk=observer.pk).update(role=Participant.Role.OBSERVER)

    scan_at(MONDAY + timedelta(days=2))

    for participant in (opted_out, inactive, observer):
        assert sent(mailoutbox, to=participant.user) == []


def test_no_account_reminder_once_the_postmortem_is_published(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
        make_postmortem(incident=incident, status=Postmortem.Status.PUBLISHED)
    participant = add_responder(incident)

    scan_at(MONDAY + timedelta(days=2))

    assert sent(mailoutbox, to=participant.user) == []


def test_a_reminder_whose_reason_is_gone_by_send_time_is_recorded_skipped(mailoutbox):
    with at(MONDAY):
        incident = make_incident()
    participant = add_responder(incident)
    with at(MONDAY + timedelta(days=2)):
        keys = [k for k in reminders.due_now() if k.recipient_id == participant.user_id]
        make_entry(incident=incident, author=participant.user, shared=True)
        outcome = reminders.send(keys[0])

    assert outcome == "skipped"
    assert Delivery.objects.get(recipient=participant.user).status == Delivery.Status.SKIPPED
    assert mailoutbox == []


# --- Review meeting ---------------------------------------------------------------------------


def test_the_meeting_invite_goes_to_each_attendee_with_the_calendar_file(mailoutbox):
    alice, bob = make_user(), make_user()
    with at(MONDAY):
        meeting = make_review_meeting(
            starts_at=MONDAY + timedelta(days=3), attendees=[alice, bob], location="Room 4"
        )
        tasks.send_meeting_invite.delay(meeting.pk)
        tasks.send_meeting_invite.delay(meeting.pk)  # saved again without changes

    assert sorted(m.to[0] for m in mailoutbox) == sorted([alice.email, bob.email])
    filename, content, mimetype = mailoutbox[0].attachments[0]
    assert filename.endswith(".ics") and mimetype.startswith("text/calendar")
    assert "BEGIN:VEVENT" in content
    assert "Room 4" in mailoutbox[0].body


def test_a_moved_meeting_is_invited_again(mailoutbox):
    alice = make_user()
    with at(MONDAY):
        meeting = make_review_meeting(starts_at=MONDAY + timedelta(days=3), attendees=[alice])
        tasks.send_meeting_invite.delay(meeting.pk)
        meeting.starts_at += timedelta(hours=2)
        meeting.sequence += 1
        meeting.save()
        tasks.send_meeting_invite.delay(meeting.pk)

    assert len(mailoutbox) == 2


def test_meeting_reminder_comes_the_set_hours_before_with_the_invite_and_not_after(mailoutbox):
    alice = make_user(time_zone="Europe/Berlin")
    starts_at = MONDAY + timedelta(days=2)
    with at(MONDAY):
        make_review_meeting(starts_at=starts_at, attendees=[alice])

    scan_at(starts_at - timedelta(hours=24, minutes=1))
    assert sent(mailoutbox, to=alice, kind=Kind.MEETING_REMINDER) == []
    scan_at(starts_at - timedelta(hours=24))
    scan_at(starts_at - timedelta(hours=1))
    scan_at(starts_at + timedelta(minutes=1))

    reminder = sent(mailoutbox, to=alice, kind=Kind.MEETING_REMINDER)
    assert len(reminder) == 1
    assert reminder[0].subject.startswith("Reminder: review of")
    assert "11:00 CET" in reminder[0].body  # 10:00 UTC in the attendee's own zone
    assert reminder[0].attachments[0][0].endswith(".ics")


def test_a_meeting_reminder_missed_until_the_meeting_started_is_dropped(mailoutbox):
    alice = make_user()
    with at(MONDAY):
        make_review_meeting(starts_at=MONDAY + timedelta(hours=5), attendees=[alice])

    scan_at(MONDAY + timedelta(hours=6))

    assert mailoutbox == []


# --- Postmortem overdue ------------------------------------------------------------------------


def resolved_incident(resolved_at: datetime, **fields):
    with at(resolved_at):
        return quiet_incident(resolved_at=resolved_at, **fields)


def test_postmortem_nudge_comes_after_five_business_days_not_counting_the_weekend(mailoutbox):
    friday = datetime(2026, 2, 27, 15, 0, tzinfo=UTC)
    incident = resolved_incident(friday)
    facilitator = incident.created_by

    scan_at(datetime(2026, 3, 6, 14, 59, tzinfo=UTC))  # the next Friday, a minute early
    assert mailoutbox == []
    scan_at(datetime(2026, 3, 6, 15, 0, tzinfo=UTC))
    scan_at(datetime(2026, 3, 9, 15, 0, tzinfo=UTC))

    nudge = sent(mailoutbox, to=facilitator, kind=Kind.POSTMORTEM_OVERDUE)
    assert len(nudge) == 1
    assert "not started yet" in nudge[0].body
    assert f"http://testserver/incidents/{incident.pk}/postmortem/" in nudge[0].body


def test_postmortem_nudge_goes_to_co_facilitators_while_still_a_draft(mailoutbox):
    incident = resolved_incident(MONDAY - timedelta(days=10))
    make_postmortem(incident=incident)
    co = make_participant(incident=incident, role=Participant.Role.CO_FACILITATOR)
    make_participant(incident=incident)  # a responder: not nudged

    scan_at(MONDAY)

    nudged = {m.to[0] for m in sent(mailoutbox, kind=Kind.POSTMORTEM_OVERDUE)}
    assert nudged == {incident.created_by.email, co.user.email}


def test_a_postmortem_nudge_missed_for_more_than_the_catch_up_window_is_dropped(mailoutbox):
    friday = datetime(2026, 2, 27, 15, 0, tzinfo=UTC)  # the nudge falls due Friday 6 March
    late, stale = resolved_incident(friday), resolved_incident(friday - timedelta(days=1))

    scan_at(datetime(2026, 3, 13, 14, 59, tzinfo=UTC))  # a week less a minute after `late`'s

    nudged = sent(mailoutbox, kind=Kind.POSTMORTEM_OVERDUE)
    assert [m.to[0] for m in nudged] == [late.created_by.email]
    assert not Delivery.objects.filter(recipient=stale.created_by).exists()
    # The home page still lists both: only the email has a window.
    home = reminders.postmortems_overdue(stale.created_by, datetime(2026, 3, 13, 15, tzinfo=UTC))
    assert home == [stale]


@pytest.mark.parametrize("status", [Postmortem.Status.IN_REVIEW, Postmortem.Status.PUBLISHED])
def test_no_postmortem_nudge_once_it_is_in_review_or_published(mailoutbox, status):
    incident = resolved_incident(MONDAY - timedelta(days=10))
    make_postmortem(incident=incident, status=status)

    scan_at(MONDAY)

    assert sent(mailoutbox, kind=Kind.POSTMORTEM_OVERDUE) == []


@pytest.mark.parametrize(
    "start, days, expected",
    [
        (datetime(2026, 2, 27, 15, tzinfo=UTC), 5, datetime(2026, 3, 6, 15, tzinfo=UTC)),  # Fri
        (datetime(2026, 3, 2, 9, tzinfo=UTC), 5, datetime(2026, 3, 9, 9, tzinfo=UTC)),  # Mon
        (datetime(2026, 2, 28, 10, tzinfo=UTC), 1, datetime(2026, 3, 3, 0, tzinfo=UTC)),  # Sat
        (datetime(2026, 3, 4, 9, tzinfo=UTC), 2, datetime(2026, 3, 6, 9, tzinfo=UTC)),  # Wed
    ],
)
def test_business_days_skip_saturdays_and_sundays(start, days, expected):
    assert reminders.add_business_days(start, days) == expected


# --- Action items ------------------------------------------------------------------------------

DUE = date(2026, 3, 10)  # a Tuesday


def item_due(**fields):
    with at(MONDAY):
        return make_action_item(incident=quiet_incident(), due_on=DUE, **fields)


def midnight(day: date, hours: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hours, tzinfo=UTC)


def test_due_soon_reminder_comes_three_days_before_and_once(mailoutbox):
    item = item_due(title="Alert on replica lag")

    scan_at(midnight(DUE - timedelta(days=4), 23))
    assert mailoutbox == []
    scan_at(midnight(DUE - timedelta(days=3)))
    scan_at(midnight(DUE - timedelta(days=2)))

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [item.owner.email]
    assert (
        mailoutbox[0].subject == f"Due Tue 10 Mar: Alert on replica lag ({item.incident.human_id})"
    )


def test_due_dates_follow_the_owners_own_calendar(mailoutbox):
    item = item_due(owner=make_user(time_zone="Pacific/Auckland"))

    # 11:00 UTC on the 6th is already the 7th in Auckland: three days before.
    scan_at(datetime(2026, 3, 6, 11, tzinfo=UTC))

    assert len(sent(mailoutbox, to=item.owner, kind=Kind.ACTION_DUE_SOON)) == 1


def test_overdue_reminder_replaces_a_due_soon_one_that_never_went(mailoutbox):
    item = item_due()

    scan_at(midnight(DUE + timedelta(days=1)))
    scan_at(midnight(DUE + timedelta(days=2)))

    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject.startswith("Overdue: ")
    assert list(Delivery.objects.values_list("kind", flat=True)) == [Kind.ACTION_OVERDUE]
    assert item.owner.email in mailoutbox[0].to


@pytest.mark.parametrize("status", ["done", "wont_do"])
def test_no_reminders_for_closed_items(mailoutbox, status):
    item_due(status=status, closed_reason="Replaced by a better fix.")

    for days in (-3, 1, 14):
        scan_at(midnight(DUE + timedelta(days=days)))

    assert mailoutbox == []


def test_in_progress_items_are_still_reminded(mailoutbox):
    item_due(status="in_progress")

    scan_at(midnight(DUE + timedelta(days=1)))

    assert len(mailoutbox) == 1


def test_long_overdue_items_are_escalated_to_the_teams_managers_instead(mailoutbox):
    manager, other_manager, opted_out = (
        make_user(),
        make_user(),
        make_user(notify_action_items=False),
    )
    team = make_team(managers=[manager, other_manager, opted_out])
    item = item_due(team=team)

    scan_at(midnight(DUE + timedelta(days=13)))
    assert sent(mailoutbox, kind=Kind.ACTION_ESCALATION) == []
    scan_at(midnight(DUE + timedelta(days=14)))
    scan_at(midnight(DUE + timedelta(days=20)))

    escalated = sent(mailoutbox, kind=Kind.ACTION_ESCALATION)
    assert sorted(m.to[0] for m in escalated) == sorted([manager.email, other_manager.email])
    assert escalated[0].subject.startswith("Overdue 14 days: ")
    assert item.owner.name in escalated[0].body
    # The owner had the overdue reminder on day 13; no second one.
    assert len(sent(mailoutbox, to=item.owner)) == 1


def test_an_escalation_missed_for_more_than_the_catch_up_window_is_dropped(mailoutbox):
    manager = make_user()
    team = make_team(managers=[manager])
    item_due(team=team)  # escalation due from DUE + 14 days, for a week

    scan_at(midnight(DUE + timedelta(days=21)))
    assert sent(mailoutbox, kind=Kind.ACTION_ESCALATION) == []
    assert not Delivery.objects.exists()

    # One day less late, and it still goes: the window is the catch-up, not a new rule.
    recent = item_due(team=team)
    recent.due_on = DUE + timedelta(days=1)
    recent.save(update_fields=["due_on"])
    scan_at(midnight(DUE + timedelta(days=21)))
    escalated = sent(mailoutbox, to=manager, kind=Kind.ACTION_ESCALATION)
    assert len(escalated) == 1 and recent.title in escalated[0].subject


def test_an_item_without_a_team_escalates_to_the_managers_of_the_owners_teams(mailoutbox):
    owner, manager = make_user(), make_user()
    make_team(members=[owner], managers=[manager])
    item_due(owner=owner)

    scan_at(midnight(DUE + timedelta(days=14)))

    assert len(sent(mailoutbox, to=manager, kind=Kind.ACTION_ESCALATION)) == 1


def test_action_item_reminders_respect_the_owners_preference_and_activity(mailoutbox):
    item_due(owner=make_user(notify_action_items=False))
    item_due(owner=make_user(is_active=False))

    scan_at(midnight(DUE - timedelta(days=1)))
    scan_at(midnight(DUE + timedelta(days=1)))

    assert mailoutbox == []


# --- The scan as a whole ----------------------------------------------------------------------


def make_everything_due(copies: int) -> None:
    """`copies` of every scanned rule, all due at MONDAY + 2 days."""
    now = MONDAY + timedelta(days=2)
    for _ in range(copies):
        with at(MONDAY):
            incident = make_incident(resolved_at=MONDAY - timedelta(days=10))
            add_responder(incident)
            make_review_meeting(
                incident=incident, starts_at=now + timedelta(hours=12), attendees=[make_user()]
            )
            manager = make_user()
            team = make_team(managers=[manager])
            make_action_item(incident=incident, team=team, due_on=now.date() + timedelta(days=1))
            make_action_item(incident=incident, team=team, due_on=now.date() - timedelta(days=2))
            make_action_item(incident=incident, team=team, due_on=now.date() - timedelta(days=16))


def test_the_scan_finds_everything_due_in_the_same_number_of_queries_for_1_or_20_of_each():
    def queries_and_kinds() -> tuple[int, set]:
        with at(MONDAY + timedelta(days=2)), CaptureQueriesContext(connection) as queries:
            keys = reminders.due_now()
        return len(queries), {key.kind for key in keys}

    make_everything_due(1)
    few, kinds = queries_and_kinds()
    make_everything_due(19)
    many, _ = queries_and_kinds()

    assert kinds == {
        Kind.ACCOUNT_REMINDER,
        Kind.MEETING_REMINDER,
        Kind.POSTMORTEM_OVERDUE,
        Kind.ACTION_DUE_SOON,
        Kind.ACTION_OVERDUE,
        Kind.ACTION_ESCALATION,
    }
    assert few == many
    assert many <= 15


def test_scanning_twice_sends_each_reminder_once(mailoutbox):
    make_everything_due(2)

    first = scan_at(MONDAY + timedelta(days=2))
    sent_first = len(mailoutbox)
    second = scan_at(MONDAY + timedelta(days=2, minutes=15))

    assert first == sent_first > 0
    assert second == 0
    assert len(mailoutbox) == sent_first
    assert Delivery.objects.count() == sent_first


def test_the_beat_task_enqueues_each_due_reminder(mailoutbox):
    make_everything_due(1)

    with at(MONDAY + timedelta(days=2)):
        count = tasks.scan_reminders.delay().get()

    assert count == len(mailoutbox) > 0


# --- The emails themselves --------------------------------------------------------------------


def test_a_reminder_has_text_and_html_parts_absolute_links_and_one_click_unsubscribe(
    mailoutbox,
):
    item = item_due()
    scan_at(midnight(DUE + timedelta(days=1)))

    message = mailoutbox[0]
    html = html_of(message)
    link = f"http://testserver/action-items/{item.pk}/"
    assert link in message.body and f'href="{link}"' in html
    assert message.alternatives[0][1] == "text/html"
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://testserver/email-preferences/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in message.body and unsubscribe[1:-1] in html


def test_user_content_is_escaped_in_html(mailoutbox):
    item_due(title='<script>alert("x")</script> & <b>co</b>')
    scan_at(midnight(DUE + timedelta(days=1)))

    html = html_of(mailoutbox[0])
    assert "<script>" not in html and "<b>co</b>" not in html
    assert "&lt;script&gt;" in html
    assert '<script>alert("x")</script> & <b>co</b>' in mailoutbox[0].body  # plain text as is


def test_a_title_with_line_breaks_cannot_inject_headers(mailoutbox):
    item = item_due(title="Outage\r\nBcc: attacker@example.com\r\n\r\nhello")
    scan_at(midnight(DUE + timedelta(days=1)))

    message = mailoutbox[0]
    assert "\n" not in message.subject and "\r" not in message.subject
    parsed = message_from_bytes(message.message().as_bytes())
    assert parsed["Bcc"] is None
    assert message.recipients() == [item.owner.email]


# --- In-app twins ------------------------------------------------------------------------------


def test_the_home_page_queries_show_the_same_things(django_assert_max_num_queries):
    owner = make_user()
    with at(MONDAY):
        incident = make_incident(resolved_at=MONDAY - timedelta(days=10))
        make_participant(incident=incident, user=owner)
        shared = make_incident()
        make_entry(incident=shared, author=owner)
        meeting = make_review_meeting(incident=incident, attendees=[owner])

    with django_assert_max_num_queries(1):
        owed = [p.incident for p in reminders.accounts_owed(owner)]

    assert owed == [incident]
    with at(MONDAY):
        assert list(reminders.upcoming_meetings(owner, MONDAY)) == [meeting]
    assert reminders.postmortems_overdue(incident.created_by, MONDAY) == [incident]
    assert reminders.postmortems_overdue(owner, MONDAY) == []
    assert TimelineEntry.objects.filter(author=owner).count() == 1
