"""Opening, editing and reading incidents; who may do which (a table over every URL and role)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from postmortems import access
from postmortems.models import Incident, IncidentChange, Participant, Service
from postmortems.models.incidents import human_duration
from tests.factories import make_entry, make_incident, make_participant, make_team, make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def incident_data(**overrides) -> dict:
    data = {
        "title": "Checkout errors after deploy",
        "severity": "2",
        "status": "investigating",
        "visibility": "internal",
        "summary": "Payments failed for some customers.",
        "customer_impact": "About 3% of checkouts failed.",
        "services": "checkout-api, Payments",
        "started_at": "",
        "detected_at": "",
        "mitigated_at": "",
        "resolved_at": "",
    }
    data.update(overrides)
    return data


def edit_data(incident: Incident, **overrides) -> dict:
    """The edit form as the browser would send it back, unchanged unless overridden."""

    def local(value):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if value else ""

    data = {
        "title": incident.title,
        "severity": str(incident.severity),
        "status": incident.status,
        "visibility": incident.visibility,
        "summary": incident.summary,
        "customer_impact": incident.customer_impact,
        "services": ", ".join(s.name for s in incident.services.all()),
        **{name: local(getattr(incident, name)) for name in Incident.KEY_MOMENTS},
    }
    data.update(overrides)
    return data


def state() -> dict:
    """Everything a refused request must leave untouched."""
    return {
        "incidents": list(Incident.objects.order_by("pk").values()),
        "participants": list(Participant.objects.order_by("pk").values()),
        "changes": IncidentChange.objects.count(),
        "services": Service.objects.count(),
        "users": User.objects.count(),
    }


# --- Opening an incident -----------------------------------------------------------------------


def test_facilitator_opens_an_incident_and_becomes_its_facilitator(client):
    facilitator = make_user(is_facilitator=True)
    client.force_login(facilitator)

    response = client.post(reverse("postmortems:incident_create"), incident_data())

    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url() + "#participants"
    assert incident.created_by == facilitator
    assert incident.human_id == f"INC-{incident.pk}"
    assert incident.severity == Incident.Severity.SEV2
    participant = incident.participants.get()
    assert (participant.user, participant.role) == (facilitator, Participant.Role.FACILITATOR)


def test_services_are_split_normalised_deduplicated_and_created_on_the_fly(client):
    Service.objects.create(name="payments")
    client.force_login(make_user(is_facilitator=True))

    client.post(
        reverse("postmortems:incident_create"),
        incident_data(services=" Checkout-API, payments,,PAYMENTS , search_v2 "),
    )

    incident = Incident.objects.get()
    assert sorted(s.name for s in incident.services.all()) == [
        "checkout-api",
        "payments",
        "search_v2",
    ]
    assert Service.objects.count() == 3


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ("checkout api", "can only contain letters, digits"),
        ("<script>", "can only contain letters, digits"),
        ("a" * 61, "at most 60"),
        (",".join(f"svc-{n}" for n in range(21)), "at most 20"),
    ],
)
def test_bad_service_names_are_refused_with_a_clear_error(client, services, message):
    client.force_login(make_user(is_facilitator=True))

    response = client.post(reverse("postmortems:incident_create"), incident_data(services=services))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Incident.objects.exists()
    assert not Service.objects.exists()


@pytest.mark.parametrize(
    ("earlier", "earlier_at", "later", "later_at"),
    [
        ("started", "2024-05-01T10:00", "detected", "2024-05-01T09:00"),
        ("detected", "2024-05-01T10:00", "mitigated", "2024-05-01T09:59"),
        # Detected unset: started and mitigated are still compared.
        ("started", "2024-05-01T10:00", "mitigated", "2024-05-01T08:00"),
        ("mitigated", "2024-05-02T10:00", "resolved", "2024-05-01T10:00"),
    ],
)
@time_machine.travel(NOW, tick=False)
def test_key_moments_out_of_order_are_refused_naming_both_and_nothing_is_saved(
    client, earlier, earlier_at, later, later_at
):
    client.force_login(make_user(is_facilitator=True))
    moments = {f"{earlier}_at": earlier_at, f"{later}_at": later_at}

    response = client.post(reverse("postmortems:incident_create"), incident_data(**moments))

    assert response.status_code == 200
    errors = response.context["form"].errors[f"{later}_at"]
    assert len(errors) == 1
    assert errors[0].startswith(later.capitalize())
    assert f"is before {earlier}" in errors[0]
    assert not Incident.objects.exists()
    assert not Participant.objects.exists()
    assert not Service.objects.exists()
    # The person's input is kept.
    assert f'value="{later_at}"' in response.content.decode()


@time_machine.travel(NOW, tick=False)
def test_equal_key_moments_and_partly_filled_ones_are_fine(client):
    client.force_login(make_user(is_facilitator=True))

    client.post(
        reverse("postmortems:incident_create"),
        incident_data(started_at="2024-05-01T10:00", resolved_at="2024-05-01T10:00"),
    )

    incident = Incident.objects.get()
    assert incident.started_at == incident.resolved_at
    assert incident.detected_at is None


@time_machine.travel(NOW, tick=False)
def test_a_key_moment_more_than_a_day_ahead_is_refused(client):
    client.force_login(make_user(is_facilitator=True))

    response = client.post(
        reverse("postmortems:incident_create"), incident_data(detected_at="2024-06-02T12:01")
    )

    assert response.status_code == 200
    assert "more than a day in the future" in response.context["form"].errors["detected_at"][0]
    assert not Incident.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_key_moment_within_the_next_day_is_accepted(client):
    client.force_login(make_user(is_facilitator=True))

    client.post(
        reverse("postmortems:incident_create"), incident_data(detected_at="2024-06-02T11:59")
    )

    assert Incident.objects.get().detected_at == datetime(2024, 6, 2, 11, 59, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_key_moments_are_entered_and_shown_in_the_editors_own_time_zone(client):
    facilitator = make_user(is_facilitator=True, time_zone="Europe/Berlin")
    client.force_login(facilitator)

    client.post(
        reverse("postmortems:incident_create"), incident_data(started_at="2024-05-01T10:00")
    )

    incident = Incident.objects.get()
    assert incident.started_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)  # CEST is UTC+2.
    form_page = client.get(reverse("postmortems:incident_edit", args=[incident.pk]))
    assert 'value="2024-05-01T10:00"' in form_page.content.decode()
    assert "1 May 2024, 10:00" in client.get(incident.get_absolute_url()).content.decode()


@time_machine.travel(NOW, tick=False)
def test_a_time_that_does_not_exist_in_the_editors_zone_is_refused(client):
    client.force_login(make_user(is_facilitator=True, time_zone="Europe/London"))

    # Clocks in London jumped from 01:00 to 02:00 on 31 March 2024.
    response = client.post(
        reverse("postmortems:incident_create"), incident_data(started_at="2024-03-31T01:30")
    )

    assert response.status_code == 200
    assert response.context["form"].errors["started_at"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    "value", ["not a date", "2024-13-45T10:00", "99999-01-01T00:00", "0001-01-01T00:00"]
)
@time_machine.travel(NOW, tick=False)
def test_malformed_or_extreme_times_give_a_form_error_never_a_500(client, value):
    client.force_login(make_user(is_facilitator=True, time_zone="Asia/Kolkata"))

    response = client.post(reverse("postmortems:incident_create"), incident_data(started_at=value))

    assert response.status_code == 200
    assert response.context["form"].errors["started_at"]
    assert not Incident.objects.exists()


def test_a_100_kb_title_gets_a_clear_error(client):
    client.force_login(make_user(is_facilitator=True))

    response = client.post(
        reverse("postmortems:incident_create"), incident_data(title="x" * 102_400)
    )

    assert response.status_code == 200
    assert "at most 200 characters" in response.context["form"].errors["title"][0]
    assert not Incident.objects.exists()


def test_a_100_kb_summary_gets_a_clear_error(client):
    client.force_login(make_user(is_facilitator=True))

    response = client.post(
        reverse("postmortems:incident_create"), incident_data(summary="y" * 102_400)
    )

    assert response.status_code == 200
    assert "at most 20000 characters" in response.context["form"].errors["summary"][0]
    assert not Incident.objects.exists()


def test_a_null_character_gets_a_form_error_not_a_database_error(client):
    client.force_login(make_user(is_facilitator=True))

    response = client.post(reverse("postmortems:incident_create"), incident_data(title="a\x00b"))

    assert response.status_code == 200
    assert response.context["form"].errors["title"]


def test_a_blank_title_is_refused(client):
    client.force_login(make_user(is_facilitator=True))

    response = client.post(reverse("postmortems:incident_create"), incident_data(title="   "))

    assert response.context["form"].errors["title"]
    assert not Incident.objects.exists()


def test_html_in_incident_fields_is_shown_escaped(client):
    script = "<script>alert('x')</script>"
    incident = make_incident(title=script, summary=script, customer_impact=script)
    client.force_login(incident.created_by)

    for url in (
        incident.get_absolute_url(),
        reverse("postmortems:incident_list"),
        reverse("postmortems:incident_edit", args=[incident.pk]),
    ):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert(" in body


# --- Editing and its history -------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_editing_records_each_change_as_readable_text(client):
    incident = make_incident(title="Old title", severity=3)
    incident.services.add(Service.objects.create(name="payments"))
    client.force_login(incident.created_by)

    response = client.post(
        reverse("postmortems:incident_edit", args=[incident.pk]),
        edit_data(
            incident,
            title="New title",
            severity="1",
            visibility="restricted",
            services="payments, checkout-api",
            started_at="2024-05-01T10:00",
        ),
    )

    assert response.status_code == 302
    change = IncidentChange.objects.get(incident=incident)
    assert change.changed_by == incident.created_by
    assert change.changes == {
        "title": ["Old title", "New title"],
        "severity": ["SEV3", "SEV1"],
        "visibility": ["Internal", "Restricted"],
        "started_at": ["", "1 May 2024, 10:00 UTC"],
        "services": ["payments", "checkout-api, payments"],
    }
    incident.refresh_from_db()
    assert incident.title == "New title"


def test_saving_an_unchanged_incident_records_nothing(client):
    incident = make_incident(summary="Line one\r\nline two")
    client.force_login(incident.created_by)

    response = client.post(
        reverse("postmortems:incident_edit", args=[incident.pk]), edit_data(incident)
    )

    assert response.status_code == 302
    assert not IncidentChange.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_an_edit_with_bad_key_moments_changes_nothing(client):
    incident = make_incident(title="Kept")
    client.force_login(incident.created_by)

    response = client.post(
        reverse("postmortems:incident_edit", args=[incident.pk]),
        edit_data(
            incident,
            title="Lost",
            started_at="2024-05-01T10:00",
            resolved_at="2024-04-01T10:00",
        ),
    )

    assert response.status_code == 200
    assert "Resolved (1 Apr 2024, 10:00) is before started" in response.content.decode()
    incident.refresh_from_db()
    assert incident.title == "Kept"
    assert not IncidentChange.objects.exists()


def test_history_lists_changes_with_who_and_what(client):
    incident = make_incident(title="Old title")
    client.force_login(incident.created_by)
    client.post(
        reverse("postmortems:incident_edit", args=[incident.pk]),
        edit_data(incident, title="New <b>title</b>"),
    )

    body = client.get(reverse("postmortems:incident_history", args=[incident.pk])).content.decode()

    assert "Old title" in body
    assert "New &lt;b&gt;title&lt;/b&gt;" in body
    assert incident.created_by.name in body


def test_history_of_an_unchanged_incident_has_an_empty_state(client):
    incident = make_incident()
    client.force_login(incident.created_by)

    response = client.get(reverse("postmortems:incident_history", args=[incident.pk]))

    assert "No changes yet" in response.content.decode()


# --- The incident page -------------------------------------------------------------------------


def test_incident_page_shows_key_moments_with_durations_in_human_form(client):
    started = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    incident = make_incident(
        started_at=started,
        detected_at=started + timedelta(hours=1, minutes=23),
        mitigated_at=started + timedelta(days=1, hours=2),
    )
    client.force_login(incident.created_by)

    body = client.get(incident.get_absolute_url()).content.decode()

    assert "Time to detect: <strong>1 h 23 min</strong>" in body
    assert "Time to mitigate: <strong>1 d 2 h</strong>" in body
    assert "Time to resolve" not in body


def test_incident_page_shows_participants_roles_and_whether_they_shared(client):
    incident = make_incident()
    sharer = make_user(display_name="Andy Sharer")
    make_entry(incident=incident, author=sharer)
    drafter = make_user(display_name="Dee Drafter")
    make_entry(incident=incident, author=drafter, shared=False)
    client.force_login(incident.created_by)

    response = client.get(incident.get_absolute_url())

    shared = {p.user.name: p.shared_count for p in response.context["participants"]}
    # A draft is nobody's business but its author's: it does not count as shared.
    assert shared == {incident.created_by.name: 0, "Andy Sharer": 1, "Dee Drafter": 0}
    assert "Shared 1 entry" in response.content.decode()


def test_incident_page_offers_edit_and_history_only_to_editors(client):
    incident = make_incident()
    edit_url = reverse("postmortems:incident_edit", args=[incident.pk])
    client.force_login(incident.created_by)
    assert edit_url in client.get(incident.get_absolute_url()).content.decode()

    client.force_login(make_user())
    body = client.get(incident.get_absolute_url()).content.decode()
    assert edit_url not in body
    assert reverse("postmortems:participant_add", args=[incident.pk]) not in body


def _detail_queries(client, incident) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(incident.get_absolute_url())
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("viewer", ["facilitator", "other"])
def test_incident_page_queries_do_not_grow_with_participants(
    client, django_assert_num_queries, viewer
):
    incident = make_incident()
    incident.services.add(Service.objects.create(name="payments"))
    # An entry from the start, so both runs fetch whatever the timeline needs for entries.
    make_entry(incident=incident, author=incident.created_by)
    user = incident.created_by if viewer == "facilitator" else make_user()
    client.force_login(user)
    with_one = _detail_queries(client, incident)

    for _ in range(19):
        participant = make_participant(incident=incident)
        make_entry(incident=incident, author=participant.user)
    incident.services.add(Service.objects.create(name="checkout"))

    with django_assert_num_queries(with_one):
        response = client.get(incident.get_absolute_url())
    assert len(response.context["participants"]) == 20


def test_unknown_incident_is_404(client):
    client.force_login(make_user(is_superuser=True))

    assert client.get(reverse("postmortems:incident_detail", args=[999_999])).status_code == 404


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (timedelta(seconds=59), "under 1 min"),
        (timedelta(minutes=1), "1 min"),
        (timedelta(hours=1, minutes=23), "1 h 23 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(days=2, minutes=5), "2 d 5 min"),
    ],
)
def test_durations_read_the_way_people_say_them(value, text):
    assert human_duration(value) == text


# --- Who may do what: every URL of this area, every role ---------------------------------------

ROLES = ["anonymous", "outsider", "manager", "responder", "facilitator", "admin"]
# (URL name, HTTP method)
ENDPOINTS = [
    ("incident_list", "get"),
    ("incident_create", "get"),
    ("incident_create", "post"),
    ("incident_detail", "get"),
    ("incident_edit", "get"),
    ("incident_edit", "post"),
    ("incident_history", "get"),
    ("participant_add", "get"),
    ("participant_add", "post"),
    ("participant_remove", "get"),
    ("participant_remove", "post"),
]
EDITING = {"incident_edit", "incident_history", "participant_add", "participant_remove"}


def expected_status(role: str, visibility: str, name: str, method: str) -> int:
    if role == "anonymous":
        return 302
    if name == "incident_list":
        return 200
    if name == "incident_create":
        if role not in ("facilitator", "admin"):
            return 403
        return 302 if method == "post" else 200
    sees = visibility == "internal" or role in ("responder", "facilitator", "admin")
    if not sees:
        return 404
    if name in EDITING and role not in ("facilitator", "admin"):
        return 403
    return 302 if method == "post" else 200


@pytest.fixture
def world():
    facilitator = make_user(is_facilitator=True)
    incidents = {}
    for visibility in ("internal", "restricted"):
        incident = make_incident(facilitator=facilitator, visibility=visibility, title=visibility)
        responder = make_participant(incident=incident, user=make_user())
        observer = make_participant(incident=incident, role=Participant.Role.OBSERVER)
        incidents[visibility] = (incident, responder, observer)
    manager = make_user()
    make_team(managers=[manager])
    # One person is the responder on both incidents.
    responder = incidents["internal"][1].user
    Participant.objects.filter(pk=incidents["restricted"][1].pk).update(user=responder)
    return {
        "incidents": incidents,
        "newcomer": make_user(display_name="Newcomer"),
        "users": {
            "anonymous": None,
            "outsider": make_user(),
            "manager": manager,
            "responder": responder,
            "facilitator": facilitator,
            "admin": make_user(is_superuser=True),
        },
    }


def request_for(world, visibility: str, name: str, method: str):
    incident, _, observer = world["incidents"][visibility]
    if name in ("incident_list", "incident_create"):
        url = reverse(f"postmortems:{name}")
    elif name == "participant_remove":
        url = reverse(f"postmortems:{name}", args=[incident.pk, observer.pk])
    else:
        url = reverse(f"postmortems:{name}", args=[incident.pk])
    data = {}
    if method == "post":
        data = {
            "incident_create": incident_data(),
            "incident_edit": edit_data(incident, title="Changed by someone"),
            "participant_add": {"user": world["newcomer"].pk, "role": "responder"},
        }.get(name, {})
    return url, data


@pytest.mark.parametrize("visibility", ["internal", "restricted"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method"), ENDPOINTS)
def test_access_rules_for_every_url_and_role(client, world, role, visibility, name, method):
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    url, data = request_for(world, visibility, name, method)
    before = state()

    response = getattr(client, method)(url, data)

    expected = expected_status(role, visibility, name, method)
    assert response.status_code == expected, response.content[:500]
    if role == "anonymous":
        assert response["Location"].startswith(reverse("accounts:login"))
    if expected in (302, 200) and method == "post" and role != "anonymous":
        assert state() != before  # The allowed change happened...
    else:
        assert state() == before  # ...and a refused or read-only request changed nothing.


def test_restricted_incident_is_404_for_a_manager_who_is_not_on_it(client):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    manager = make_user()
    make_team(managers=[manager])
    client.force_login(manager)

    assert client.get(incident.get_absolute_url()).status_code == 404


@pytest.mark.parametrize("visibility", Incident.Visibility.values)
def test_the_one_incident_rule_agrees_with_visible_incidents_for_everyone(visibility):
    """access.may_see_incident (pages reading one incident) and visible_incidents (lists) are
    the same rule: for each kind of person, both give the same answer."""
    incident = make_incident(visibility=visibility)
    make_incident(visibility=visibility)  # another, which nobody below is on
    participant = make_participant(incident=incident).user
    inactive = make_participant(incident=incident).user
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    people = {
        "facilitator": incident.created_by,
        "participant": participant,
        "inactive participant": User.objects.get(pk=inactive.pk),
        "outsider": make_user(),
        "manager": make_team(managers=[make_user()]).managers.get(),
        "admin": make_user(is_superuser=True),
    }
    for name, person in people.items():
        for each in Incident.objects.all():
            listed = access.visible_incidents(person).filter(pk=each.pk).exists()
            fresh = Incident.objects.get(pk=each.pk)  # no role remembered from before
            assert access.may_see_incident(person, fresh) == listed, (name, each.pk)


def test_an_inactive_facilitator_cannot_open_incidents(client):
    user = make_user(is_facilitator=True)
    client.force_login(user)
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = client.post(reverse("postmortems:incident_create"), incident_data())

    assert response.status_code in (302, 403)
    assert not Incident.objects.exists()
