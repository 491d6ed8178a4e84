"""Who may do what to an account: every timeline URL against every kind of person.

404 for those who may not see the thing, 403 for those who may see but not change it, and in
either case nothing in the database changes.
"""

import pytest
from django.urls import reverse

from postmortems.models import Incident, ReviewQuestion, TimelineEntry, TimelineEntryRevision
from tests.factories import make_entry, make_incident, make_participant, make_team, make_user

pytestmark = pytest.mark.django_db

ROLES = ["author", "other participant", "facilitator", "manager", "signed-in", "admin"]


def people(incident, author):
    manager = make_user()
    make_team(managers=[manager])
    return {
        "author": author,
        "other participant": make_participant(incident=incident).user,
        "facilitator": incident.created_by,
        "manager": manager,
        "signed-in": make_user(),
        "admin": make_user(is_superuser=True, is_staff=True),
    }


def requests_for(incident, entry):
    """(name, method, url, data) for every timeline URL."""
    edit_prefix = f"entry-{entry.pk}-"
    return [
        ("my_account", "get", reverse("postmortems:my_account", args=[incident.pk]), None),
        (
            "my_account add",
            "post",
            reverse("postmortems:my_account", args=[incident.pk]),
            {
                "occurred_at": "2026-01-01T10:00",
                "action": "Smuggled",
                "kind": "action",
                "basis": "observed",
            },
        ),
        ("share all", "post", reverse("postmortems:account_share_all", args=[incident.pk]), {}),
        ("detail", "get", reverse("postmortems:entry_detail", args=[entry.pk]), None),
        ("edit form", "get", reverse("postmortems:entry_edit", args=[entry.pk]), None),
        (
            "edit",
            "post",
            reverse("postmortems:entry_edit", args=[entry.pk]),
            {
                edit_prefix + "occurred_at": "2026-01-01T10:00",
                edit_prefix + "action": "Rewritten",
                edit_prefix + "kind": "action",
                edit_prefix + "basis": "observed",
                edit_prefix + "version": "1",
            },
        ),
        ("share", "post", reverse("postmortems:entry_share", args=[entry.pk]), {}),
        (
            "annotate",
            "post",
            reverse("postmortems:entry_annotate", args=[entry.pk]),
            {"key_moment": "detected"},
        ),
        (
            "question",
            "post",
            reverse("postmortems:entry_question_add", args=[entry.pk]),
            {"text": "What did you see?"},
        ),
        # Last, so that every other URL is tried on the entry first.
        ("delete form", "get", reverse("postmortems:entry_delete", args=[entry.pk]), None),
        ("delete", "post", reverse("postmortems:entry_delete", args=[entry.pk]), {}),
    ]


OK = {"get": 200, "post": 302}

# For a shared entry of an internal incident: what each person gets from each URL.
SHARED_INTERNAL = {
    "author": {"*": "ok", "annotate": 403, "question": 403},
    "other participant": {
        "my_account": "ok",
        "my_account add": "ok",
        "share all": "ok",
        "detail": "ok",
        "*": 403,
    },
    "facilitator": {
        "my_account": "ok",
        "my_account add": "ok",
        "share all": "ok",
        "detail": "ok",
        "annotate": "ok",
        "question": "ok",
        "*": 403,
    },
    "manager": {"detail": "ok", "*": 403},
    "signed-in": {"detail": "ok", "*": 403},
    "admin": {"detail": "ok", "annotate": "ok", "question": "ok", "*": 403},
}


def expected(table, role, name, method):
    rule = table[role].get(name, table[role]["*"])
    return OK[method] if rule == "ok" else rule


def snapshot():
    return (
        list(TimelineEntry.objects.order_by("pk").values()),
        TimelineEntryRevision.objects.count(),
        ReviewQuestion.objects.count(),
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_url_for_every_role_on_a_shared_entry(client, role):
    incident = make_incident()
    author = make_user()
    entry = make_entry(incident=incident, author=author, action="The author's words")
    client.force_login(people(incident, author)[role])

    for name, method, url, data in requests_for(incident, entry):
        before = snapshot()
        response = getattr(client, method)(url, data) if data is not None else client.get(url)
        want = expected(SHARED_INTERNAL, role, name, method)
        assert response.status_code == want, (role, name, response.status_code)
        if want in (403, 404):
            assert snapshot() == before, (role, name)


@pytest.mark.parametrize("role", ["other participant", "facilitator", "manager", "admin"])
def test_nobody_but_the_author_sees_or_touches_a_draft(client, role):
    incident = make_incident()
    author = make_user()
    draft = make_entry(incident=incident, author=author, shared=False, action="Private words")
    client.force_login(people(incident, author)[role])
    entry_urls = {"detail", "edit form", "edit", "delete form", "delete", "share"}
    entry_urls |= {"annotate", "question"}

    for name, method, url, data in requests_for(incident, draft):
        if name not in entry_urls:
            continue
        before = snapshot()
        response = getattr(client, method)(url, data) if data is not None else client.get(url)
        assert response.status_code == 404, (role, name, response.status_code)
        assert snapshot() == before


@pytest.mark.parametrize("role", ["signed-in", "manager"])
def test_outsiders_get_404_for_everything_in_a_restricted_incident(client, role):
    incident = make_incident(visibility=Incident.Visibility.RESTRICTED)
    author = make_user()
    entry = make_entry(incident=incident, author=author)
    client.force_login(people(incident, author)[role])

    for name, method, url, data in requests_for(incident, entry):
        before = snapshot()
        response = getattr(client, method)(url, data) if data is not None else client.get(url)
        assert response.status_code == 404, (role, name, response.status_code)
        assert snapshot() == before


def test_anonymous_people_are_sent_to_sign_in_and_nothing_changes(client):
    incident = make_incident()
    entry = make_entry(incident=incident)

    for name, method, url, data in requests_for(incident, entry):
        before = snapshot()
        response = getattr(client, method)(url, data) if data is not None else client.get(url)
        assert response.status_code == 302, name
        assert reverse("accounts:login") in response["Location"]
        assert snapshot() == before
