"""Weekly digests: at each person's local Monday 09:00, once a week, skipped when empty."""

import socket
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from postmortems import digests, tasks
from postmortems.models import ActionItem, Delivery
from tests.factories import make_action_item, make_incident, make_team, make_user

pytestmark = pytest.mark.django_db

# Monday 23 November 2026, and the week before it.
MONDAY = date(2026, 11, 23)
LAST_WEEK = MONDAY - timedelta(days=7)


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def scan_at(moment: datetime) -> int:
    with at(moment):
        return digests.scan()


def digest_rows(user=None):
    rows = Delivery.objects.filter(kind=Delivery.Kind.WEEKLY_DIGEST)
    return rows.filter(recipient=user) if user else rows


def manager_with_an_overdue_item(**user_fields):
    manager = make_user(**user_fields)
    team = make_team(managers=[manager])
    # They own it too, so nobody else has a digest to receive.
    item = make_action_item(team=team, owner=manager, due_on=date(2026, 1, 5))
    return manager, team, item


# --- What is in it ----------------------------------------------------------------------------


def test_a_managers_digest_holds_their_teams_overdue_due_soon_done_and_new_items():
    manager = make_user()
    team, other_team = make_team(managers=[manager]), make_team()
    andy, mei = make_user(display_name="Andy"), make_user(display_name="Mei")
    with at(utc(LAST_WEEK - timedelta(days=14), 12)):
        overdue = make_action_item(team=team, owner=andy, due_on=MONDAY - timedelta(days=1))
        soon = make_action_item(team=team, owner=mei, due_on=MONDAY + timedelta(days=6))
        later = make_action_item(team=team, owner=mei, due_on=MONDAY + timedelta(days=7))
        done = make_action_item(
            team=team,
            owner=andy,
            status=ActionItem.Status.DONE,
            completed_at=utc(LAST_WEEK + timedelta(days=2), 15),
        )
        make_action_item(
            team=team,
            owner=andy,
            status=ActionItem.Status.DONE,
            completed_at=utc(LAST_WEEK - timedelta(days=1), 15),
        )
        make_action_item(team=other_team, due_on=MONDAY - timedelta(days=3))
    with at(utc(LAST_WEEK + timedelta(days=4), 9)):
        new = make_action_item(team=team, owner=mei, due_on=MONDAY + timedelta(days=30))

    digest = digests.compile_for(manager, utc(MONDAY, 9))

    assert digest.teams == [team]
    assert digest.overdue.items == [overdue]
    assert digest.due_soon.items == [soon]
    assert later not in digest.due_soon.items
    assert digest.done.items == [done]
    assert digest.new.items == [new]
    counts = {row.name: (row.overdue, row.due_soon, row.done, row.new) for row in digest.owners}
    assert counts == {"Andy": (1, 0, 1, 0), "Mei": (0, 1, 0, 1)}
    assert digest.own.total == 0


def test_an_owners_digest_lists_their_own_open_items():
    owner = make_user()
    mine = make_action_item(owner=owner, due_on=MONDAY + timedelta(days=40))
    make_action_item(owner=owner, status=ActionItem.Status.DONE)
    make_action_item(owner=make_user())

    digest = digests.compile_for(owner, utc(MONDAY, 9))

    assert not digest.is_manager
    assert digest.own.items == [mine]
    assert not digest.is_empty


def test_long_lists_are_cut_but_counted():
    owner = make_user()
    for _ in range(digests.LIST_LIMIT + 3):
        make_action_item(owner=owner)

    digest = digests.compile_for(owner, utc(MONDAY, 9))

    assert len(digest.own.items) == digests.LIST_LIMIT
    assert digest.own.total == digests.LIST_LIMIT + 3
    assert digest.own.more == 3


def test_compiling_for_a_thousand_managers_takes_three_queries_however_many_items():
    managers = User.objects.bulk_create(
        User(email=f"manager{n}@example.com", time_zone=["UTC", "Asia/Tokyo"][n % 2])
        for n in range(1000)
    )
    teams = [make_team(managers=managers[i::4]) for i in range(4)]
    owners = [make_user() for _ in range(5)]

    def queries() -> int:
        users = list(User.objects.filter(pk__in=[m.pk for m in managers]))
        with CaptureQueriesContext(connection) as captured:
            compiled = digests.compile_many(users, utc(MONDAY, 9))
        assert len(compiled) == len(managers)
        return len(captured)

    make_action_item(team=teams[0], owner=owners[0], due_on=MONDAY)
    few = queries()
    for n in range(200):
        make_action_item(
            team=teams[n % 4], owner=owners[n % 5], due_on=MONDAY + timedelta(days=n % 9 - 4)
        )
    many = queries()

    assert few == many <= 3


# --- When it is sent ----------------------------------------------------------------------------


def test_the_digest_is_sent_at_nine_on_monday_morning_and_once(mailoutbox):
    manager, *_ = manager_with_an_overdue_item(time_zone="UTC")

    scan_at(utc(MONDAY, 8, 59))
    assert mailoutbox == []
    scan_at(utc(MONDAY, 9, 5))
    scan_at(utc(MONDAY, 10, 5))
    scan_at(utc(MONDAY + timedelta(days=2), 10, 5))

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [manager.email]
    assert digest_rows(manager).get().period == "2026-11-23"


def test_in_london_after_the_clocks_go_back_it_is_nine_gmt(mailoutbox):
    manager, *_ = manager_with_an_overdue_item(time_zone="Europe/London")
    before_change, after_change = date(2026, 10, 19), date(2026, 10, 26)  # BST, then GMT

    scan_at(utc(before_change, 7, 59))
    assert mailoutbox == []
    scan_at(utc(before_change, 8, 0))  # 09:00 BST
    assert len(mailoutbox) == 1

    scan_at(utc(after_change, 8, 0))  # 08:00 GMT: not yet
    assert len(mailoutbox) == 1
    scan_at(utc(after_change, 9, 0))  # 09:00 GMT
    assert len(mailoutbox) == 2
    assert list(digest_rows(manager).order_by("period").values_list("period", flat=True)) == [
        "2026-10-19",
        "2026-10-26",
    ]


def test_in_new_york_the_digest_follows_its_own_clock_change(mailoutbox):
    manager, *_ = manager_with_an_overdue_item(time_zone="America/New_York")
    edt_monday, est_monday = date(2026, 10, 26), date(2026, 11, 2)

    scan_at(utc(edt_monday, 9, 0))  # 05:00 in New York; London's digests go now
    assert mailoutbox == []
    scan_at(utc(edt_monday, 13, 0))  # 09:00 EDT
    assert len(mailoutbox) == 1

    scan_at(utc(est_monday, 13, 0))  # 08:00 EST: not yet
    assert len(mailoutbox) == 1
    scan_at(utc(est_monday, 14, 0))  # 09:00 EST
    assert len(mailoutbox) == 2


def test_a_missed_monday_is_caught_up_later_that_week_but_not_the_next_monday_at_dawn(
    mailoutbox,
):
    manager, *_ = manager_with_an_overdue_item()

    scan_at(utc(MONDAY + timedelta(days=7), 6))  # next Monday before nine: last week is over
    assert mailoutbox == []
    scan_at(utc(MONDAY + timedelta(days=3), 16))  # Thursday of the week
    assert len(mailoutbox) == 1
    assert digest_rows(manager).get().period == MONDAY.isoformat()


def test_an_empty_digest_is_recorded_as_skipped_and_not_sent(mailoutbox):
    manager = make_user()
    make_team(managers=[manager])

    scan_at(utc(MONDAY, 9))
    scan_at(utc(MONDAY, 10))

    assert mailoutbox == []
    row = digest_rows(manager).get()
    assert row.status == Delivery.Status.SKIPPED
    assert row.last_error == "Nothing to report this week."


def test_people_with_nothing_to_report_are_not_even_tried(mailoutbox):
    make_user()

    assert scan_at(utc(MONDAY, 9)) == 0
    assert not digest_rows().exists()


def test_no_digest_for_people_who_opted_out_or_are_inactive(mailoutbox):
    manager_with_an_overdue_item(notify_weekly_digest=False)
    manager_with_an_overdue_item(is_active=False)

    scan_at(utc(MONDAY, 9))

    assert mailoutbox == []


def test_the_digest_scan_takes_the_same_queries_for_one_or_many_recipients():
    manager_with_an_overdue_item(time_zone="Europe/London")

    def queries() -> int:
        with at(utc(MONDAY, 9)), CaptureQueriesContext(connection) as captured:
            digests.scan(dispatch=lambda pk, period: None)
        return len(captured)

    one = queries()
    for zone in ["Europe/London", "UTC", "Africa/Lagos", "America/New_York"] * 10:
        manager_with_an_overdue_item(time_zone=zone)
    many = queries()

    assert one == many <= 3


def test_the_scan_hands_out_batches_of_one_week_each(monkeypatch):
    monkeypatch.setattr(digests, "BATCH_SIZE", 2)
    london = [manager_with_an_overdue_item(time_zone="Europe/London")[0] for _ in range(3)]
    auckland = manager_with_an_overdue_item(time_zone="Pacific/Auckland")[0]
    batches = []

    # Monday 09:00 in London is already Monday evening in Auckland: both are due, and in
    # Auckland it is still the same week (23 November).
    with at(utc(MONDAY, 9)):
        count = digests.scan(dispatch_batch=lambda period, ids: batches.append((period, ids)))

    assert count == 4
    assert sorted(batches) == [
        ("2026-11-23", [london[0].pk, london[1].pk]),
        ("2026-11-23", [london[2].pk, auckland.pk]),
    ]


def test_a_batch_is_sent_in_a_few_queries_plus_one_per_digest(mailoutbox):
    managers = [manager_with_an_overdue_item()[0] for _ in range(30)]

    with at(utc(MONDAY, 9)), CaptureQueriesContext(connection) as captured:
        outcomes = digests.send_many("2026-11-23", [m.pk for m in managers])

    assert outcomes == {"sent": 30}
    assert len(mailoutbox) == 30
    # People, teams, items, the owners' names; a claim per 20 digests; a "sent" mark per digest.
    assert len(captured) <= 4 + 2 + 30


def test_a_batch_goes_over_one_smtp_connection(settings):
    sessions, messages = set(), []

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            sessions.add(id(session))
            messages.append(envelope.rcpt_tos)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        managers = [manager_with_an_overdue_item()[0] for _ in range(5)]
        scan_at(utc(MONDAY, 9))
    finally:
        controller.stop()

    assert sorted(to for [to] in messages) == sorted(m.email for m in managers)
    assert len(sessions) == 1
    assert set(digest_rows().values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_the_beat_task_sends_each_due_digest_once(mailoutbox):
    for _ in range(3):
        manager_with_an_overdue_item()

    with at(utc(MONDAY, 9, 5)):
        tasks.scan_digests.delay()
        tasks.scan_digests.delay()

    assert len(mailoutbox) == 3
    assert digest_rows().count() == 3


# --- The email ------------------------------------------------------------------------------------


def test_the_digest_email_has_text_and_html_absolute_links_and_a_browser_view(mailoutbox):
    manager = make_user()
    team = make_team(managers=[manager])
    item = make_action_item(
        team=team, title="Page on <replica> lag & more", due_on=MONDAY - timedelta(days=2)
    )

    scan_at(utc(MONDAY, 9))

    message = mailoutbox[0]
    html = message.alternatives[0][0]
    link = f"http://testserver/action-items/{item.pk}/"
    assert message.subject == "Action items, week of 23 Nov: 1 overdue, 0 due soon in your teams"
    assert link in message.body and f'href="{link}"' in html
    assert (
        "http://testserver/digest/" in message.body and 'href="http://testserver/digest/"' in html
    )
    assert "Page on &lt;replica&gt; lag &amp; more" in html
    assert "Page on <replica> lag & more" in message.body
    assert message.extra_headers["List-Unsubscribe"].startswith(
        "<http://testserver/email-preferences/"
    )
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- View in browser ------------------------------------------------------------------------------


def test_the_preview_shows_the_signed_in_managers_digest(client):
    manager = make_user()
    team = make_team(managers=[manager])
    mine = make_action_item(team=team, title="Alert on replica lag", due_on=MONDAY)
    make_action_item(team=make_team(), title="Someone else's team item", due_on=MONDAY)
    client.force_login(manager)

    with at(utc(MONDAY, 10)):
        response = client.get(reverse("postmortems:digest_preview"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Alert on replica lag" in content
    assert f'href="/action-items/{mine.pk}/"' in content
    assert "Someone else" not in content
    assert "style=" not in content  # the shared fragments add inline styles only in email


def test_the_preview_has_an_empty_state(client):
    client.force_login(make_user())

    response = client.get(reverse("postmortems:digest_preview"))

    assert "Nothing to report" in response.content.decode()


def test_the_preview_takes_the_same_queries_with_one_or_many_items(
    client, django_assert_max_num_queries
):
    manager = make_user()
    team = make_team(managers=[manager])
    incident = make_incident()
    make_action_item(incident=incident, team=team, owner=manager, due_on=MONDAY)
    client.force_login(manager)

    def queries() -> int:
        with at(utc(MONDAY, 10)), CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("postmortems:digest_preview")).status_code == 200
        return len(captured)

    one = queries()
    for n in range(30):
        make_action_item(
            incident=incident,
            team=team,
            owner=make_user(),
            due_on=MONDAY + timedelta(days=n % 5 - 2),
        )
    many = queries()

    assert one == many


def test_the_preview_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("postmortems:digest_preview"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- Its rows (postmortems/templatetags/digest_rows.py) ------------------------------------------


def test_a_digests_rows_show_owner_due_date_and_overdue_and_escape_what_people_wrote(client):
    manager, owner = make_user(), make_user(display_name="Ada <b>Lovelace</b>")
    team = make_team(managers=[manager])
    with at(utc(LAST_WEEK, 12)):  # both new last week, so both are listed
        late = make_action_item(
            team=team, owner=owner, title="Fix <script>x()</script>", due_on=MONDAY - timedelta(1)
        )
        make_action_item(team=team, owner=None, title="Nobody's", due_on=None)
    client.force_login(manager)

    with at(utc(MONDAY, 10)):
        digest = digests.compile_for(manager, utc(MONDAY, 10))
        message = digests._message(manager, digest, "2026-11-23", utc(MONDAY, 10), digests._links())
        page = client.get(reverse("postmortems:digest_preview")).content.decode()
    html, text = message.alternatives[0][0], message.body

    row = (
        f'<td><a href="http://testserver/action-items/{late.pk}/">'
        "Fix &lt;script&gt;x()&lt;/script&gt;</a></td>\n"
        f"        <td>{late.incident.human_id}</td>\n"
        "        <td>Ada &lt;b&gt;Lovelace&lt;/b&gt;</td>\n        <td>22 Nov 2026"
        ' <span class="badge text-bg-danger" style="color: #c92a2a;">overdue</span></td>'
    )
    assert row in html
    assert row.replace("http://testserver", "").replace(' style="color: #c92a2a;"', "") in page
    assert "<td>No owner</td>" in html and "no due date" in html
    assert "<script>" not in html and "<script>" not in page
    # Plain text: nothing escaped, nothing marked up.
    assert (
        f"- Fix <script>x()</script> [{late.incident.human_id}], Ada <b>Lovelace</b>, due 22 Nov\n"
        in text
    )
    assert "- Nobody's" in text and ", no owner, no due date\n" in text
    assert "  Ada <b>Lovelace</b>: 1 / 0 / 0 / 1\n" in text  # the "by owner" lines
    assert '<td>Ada &lt;b&gt;Lovelace&lt;/b&gt;</td><td class="text-end">1</td>' in html
