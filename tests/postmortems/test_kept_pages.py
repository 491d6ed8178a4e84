"""Whole pages kept in memory (postmortems/kept_pages.py) and the change counter that decides
when they may be served again (postmortems/change_counter.py).

These tests commit, as requests do: a page is never kept inside a transaction, because the
counter moves when a transaction commits. The deadlock at the end needs PostgreSQL.
"""

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection, connections, transaction
from django.db.models import F
from django.middleware.csrf import _does_token_match
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.autoreload import file_changed

from postmortems import change_counter, fragments, kept_pages
from postmortems.models import ActionItem, ChangeCounter, Incident, Participant, TimelineEntry
from tests.conftest import TemplateRenders, needs
from tests.factories import (
    make_action_item,
    make_entry,
    make_incident,
    make_participant,
    make_team,
    make_user,
)
from tests.postmortems.test_entries import entry_data

pytestmark = pytest.mark.django_db(transaction=True)

SHARED_WORDS = "Rolled back the 09:50 deploy"
DRAFT_WORDS = "Only the author sees this draft"
# What a page served from memory still asks: the session, the user, and the counter.
KEPT_PAGE_TABLES = {"django_session", "accounts_user", change_counter.COUNTER}


class World:
    def __init__(self) -> None:
        self.engineer = make_user(display_name="Ada Engineer")
        self.manager = make_user(display_name="Grace Manager")
        self.team = make_team(members=[self.engineer], managers=[self.manager])
        self.incident = make_incident(title="Checkout errors", visibility="internal")
        self.secret = make_incident(title="Leaked keys", visibility="restricted")
        make_participant(incident=self.secret, user=self.engineer)
        self.facilitator = self.incident.created_by
        make_participant(incident=self.incident, user=self.engineer)
        self.entry = make_entry(incident=self.incident, author=self.engineer, action=SHARED_WORDS)
        self.draft = make_entry(
            incident=self.incident, author=self.engineer, action=DRAFT_WORDS, shared=False
        )
        self.item = make_action_item(
            incident=self.incident,
            owner=self.engineer,
            team=self.team,
            title="Alert on lag",
            due_on=timezone.localdate() + timedelta(days=2),  # "due soon" in the digest
        )

    def client(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client


@pytest.fixture
def world() -> World:
    return World()


# Each kept page: who looks at it, where, and the template it renders.
PAGES = {
    "incident_list": ("engineer", lambda w: reverse("postmortems:incident_list")),
    "incident_detail": (
        "engineer",
        lambda w: reverse("postmortems:incident_detail", args=[w.incident.pk]),
    ),
    "my_account": ("engineer", lambda w: reverse("postmortems:my_account", args=[w.incident.pk])),
    "action_item_review": (
        "manager",
        lambda w: reverse("postmortems:action_item_review") + "?team=mine",
    ),
    "digest_preview": ("manager", lambda w: reverse("postmortems:digest_preview")),
}
TEMPLATES = {
    "incident_list": "postmortems/incident_list.html",
    "incident_detail": "postmortems/incident_detail.html",
    "my_account": "postmortems/my_account.html",
    "action_item_review": "postmortems/action_item_review.html",
    "digest_preview": "postmortems/digest_preview.html",
}


def page(world: World, name: str) -> tuple[Client, str]:
    who, url = PAGES[name]
    return world.client(getattr(world, who)), url(world)


_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"|"X-CSRFToken": "(\w+)"')


def tokens(content: bytes) -> list[str]:
    return [(a or b).decode() for a, b in _TOKEN.findall(content)]


def without_tokens(content: bytes) -> bytes:
    return _TOKEN.sub(b"TOKEN", content)


def tables_read(queries) -> set[str]:
    names = connection.introspection.table_names()
    sql = " ".join(query["sql"] for query in queries)
    return {name for name in names if re.search(rf"\b{re.escape(name)}\b", sql)}


# --- Served again, and only while nothing has changed ------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_a_page_seen_again_is_served_from_memory_with_three_queries(world, name):
    client, url = page(world, name)
    first = client.get(url)
    with TemplateRenders(TEMPLATES[name]) as renders, CaptureQueriesContext(connection) as seen:
        second = client.get(url)

    assert first.status_code == second.status_code == 200
    assert renders.count == 0
    assert tables_read(seen.captured_queries) == KEPT_PAGE_TABLES
    assert len(seen.captured_queries) == 3
    assert without_tokens(second.content) == without_tokens(first.content)
    assert second["Content-Type"] == first["Content-Type"]


@pytest.mark.parametrize("name", PAGES)
def test_a_page_reads_only_tables_whose_changes_the_counter_counts(world, name, settings):
    """Were a page to show a table the counter does not watch, a change there would leave the
    kept page stale: every table each page reads is watched, or is the session or the counter."""
    settings.KEPT_PAGES_MB = 0
    client, url = page(world, name)
    with CaptureQueriesContext(connection) as seen:
        assert client.get(url).status_code == 200

    watched = set(change_counter.watched_tables(apps))
    assert tables_read(seen.captured_queries) - watched <= {"django_session"}
    assert {"postmortems_incident", "accounts_user"} <= watched


def change_entry(w: World) -> str:
    # As an edit does: the timeline's own kept HTML goes by each entry's version.
    TimelineEntry.objects.filter(pk=w.entry.pk).update(
        action="Failed over to the replica", version=F("version") + 1
    )
    return "Failed over to the replica"


def rename_engineer(w: World) -> str:
    w.engineer.display_name = "Ada Lovelace"
    w.engineer.save(update_fields=["display_name"])
    return "Ada Lovelace"


def retitle_incident(w: World) -> str:
    Incident.objects.filter(pk=w.incident.pk).update(title="Payments declined")
    return "Payments declined"


def retitle_item(w: World) -> str:
    ActionItem.objects.filter(pk=w.item.pk).update(title="Page on replica lag")
    return "Page on replica lag"


@pytest.mark.parametrize(
    "name, change",
    [
        ("incident_detail", change_entry),
        ("incident_detail", rename_engineer),
        ("incident_detail", retitle_incident),
        ("incident_detail", retitle_item),
        ("incident_list", retitle_incident),
        ("my_account", change_entry),
        ("action_item_review", retitle_item),
        ("action_item_review", rename_engineer),
        ("digest_preview", retitle_item),
    ],
)
def test_a_committed_change_to_what_a_page_shows_renders_it_again(world, name, change):
    client, url = page(world, name)
    client.get(url)

    shown = change(world)
    response = client.get(url)

    assert shown in response.content.decode()


def test_someone_removed_from_a_restricted_incident_no_longer_gets_its_kept_page(world):
    client = world.client(world.engineer)
    url = reverse("postmortems:incident_detail", args=[world.secret.pk])
    assert client.get(url).status_code == 200

    Participant.objects.filter(incident=world.secret, user=world.engineer).delete()

    assert client.get(url).status_code == 404


def test_a_manager_no_longer_managing_the_team_no_longer_sees_its_items(world):
    client, url = page(world, "action_item_review")
    assert "Alert on lag" in client.get(url).content.decode()

    world.team.managers.remove(world.manager)

    assert "Alert on lag" not in client.get(url).content.decode()


def test_pages_are_kept_for_their_viewer_alone(world):
    url = reverse("postmortems:my_account", args=[world.incident.pk])
    engineers = world.client(world.engineer).get(url).content.decode()
    facilitators = world.client(world.facilitator).get(url).content.decode()
    detail = reverse("postmortems:incident_detail", args=[world.secret.pk])
    world.client(world.engineer).get(detail)
    outsider = world.client(make_user()).get(detail)

    assert DRAFT_WORDS in engineers
    assert DRAFT_WORDS not in facilitators
    assert outsider.status_code == 404


# --- What belongs to the request ------------------------------------------------------------------


def test_each_response_carries_its_own_sessions_csrf_token_and_the_form_works(world):
    client, url = page(world, "my_account")
    first, second = client.get(url), client.get(url)
    secret = client.cookies[  # the session's CSRF secret, as the browser holds it
        "csrftoken"
    ].value

    first_tokens, second_tokens = tokens(first.content), tokens(second.content)
    assert first_tokens and second_tokens
    assert fragments.CSRF_SLOT not in second.content.decode()
    assert set(first_tokens).isdisjoint(second_tokens)  # masked afresh for each response
    assert all(_does_token_match(token, secret) for token in first_tokens + second_tokens)

    strict = world.client(world.engineer)
    strict.handler.enforce_csrf_checks = True
    strict.get(url)  # its own session's page, kept under the same key as the others
    token = tokens(strict.get(url).content)[0]
    saved = strict.post(url, entry_data(csrfmiddlewaretoken=token))
    assert saved.status_code == 302
    assert TimelineEntry.objects.filter(action=entry_data()["action"]).exists()


def test_a_waiting_message_is_shown_once_and_not_kept(world):
    world.draft.delete()  # nothing to share: the message comes without any write
    client, url = page(world, "my_account")
    client.get(url)
    before = change_counter.current(connection)

    client.post(reverse("postmortems:account_share_all", args=[world.incident.pk]))
    shown, again = client.get(url), client.get(url)

    assert change_counter.current(connection) == before
    assert "You had no drafts to share." in shown.content.decode()
    assert "You had no drafts to share." not in again.content.decode()


def test_htmx_requests_and_posts_are_never_served_from_memory(world):
    client, url = page(world, "my_account")
    client.get(url)
    with TemplateRenders("postmortems/includes/entry_account_panel.html") as renders:
        client.get(url, headers={"HX-Request": "true"})
        client.get(url, headers={"HX-Request": "true"})
    with TemplateRenders(TEMPLATES["my_account"]) as posted:
        client.post(url, entry_data(action=""))  # invalid: the page again, with the errors

    assert renders.count == 2
    assert posted.count == 1


def test_nothing_is_kept_when_the_limit_is_zero(world, settings):
    settings.KEPT_PAGES_MB = 0
    client, url = page(world, "incident_detail")
    with TemplateRenders(TEMPLATES["incident_detail"]) as renders:
        client.get(url)
        client.get(url)

    assert renders.count == 2
    assert len(kept_pages.PAGES) == 0


def test_nothing_is_kept_inside_a_transaction(world):
    client, url = page(world, "incident_detail")
    with transaction.atomic(), TemplateRenders(TEMPLATES["incident_detail"]) as renders:
        client.get(url)
        client.get(url)

    assert renders.count == 2


def test_the_oldest_pages_go_first_when_the_store_is_full():
    store = kept_pages.KeptPages()
    for n in range(5):
        store.put_page(n, kept_pages._Page(b"x" * 100, []), limit=300)

    assert len(store) == 3
    assert store.size == 300
    assert store.get(0) is None and store.get(4) is not None


# --- The counter -------------------------------------------------------------------------------


def test_every_watched_table_has_its_trigger_again_after_migrate():
    watched = change_counter.watched_tables(apps)
    assert change_counter.installed(connection) == watched
    assert "postmortems_incident_services" in watched  # many-to-many tables too
    assert "accounts_team_managers" in watched
    assert "postmortems_delivery" not in watched

    change_counter.uninstall(connection)
    ChangeCounter.objects.all().delete()
    assert change_counter.installed(connection) == []
    assert change_counter.current(connection) is None

    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)

    assert change_counter.installed(connection) == watched
    assert change_counter.current(connection) is not None


def test_without_its_row_the_counter_keeps_nothing_and_pages_still_work(world):
    ChangeCounter.objects.all().delete()
    client, url = page(world, "incident_detail")
    with TemplateRenders(TEMPLATES["incident_detail"]) as renders:
        assert client.get(url).status_code == 200
        assert client.get(url).status_code == 200

    assert renders.count == 2


def test_a_write_moves_the_counter_and_a_rolled_back_one_does_not():
    incident = make_incident()
    before = change_counter.current(connection)
    with pytest.raises(RuntimeError), transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(title="Never committed")
        raise RuntimeError
    assert change_counter.current(connection) == before

    Incident.objects.filter(pk=incident.pk).update(title="Committed")

    assert change_counter.current(connection) > before


def test_on_postgresql_a_transaction_counts_once_and_only_when_it_commits():
    needs(connection.vendor == "postgresql", "deferred counting needs PostgreSQL")
    incident = make_incident()
    before = change_counter.current(connection)
    with transaction.atomic():
        for n in range(3):
            make_entry(incident=incident, author=incident.created_by, action=f"Step {n}")
        Incident.objects.filter(pk=incident.pk).update(title="Three steps")
        assert change_counter.current(connection) == before  # not before the commit

    assert change_counter.current(connection) == before + 1


def test_on_postgresql_writers_do_not_deadlock_on_the_counter():
    """One transaction holds an incident's row; another writes elsewhere, then wants that row.
    Had the first write taken the counter's row, the holder's count at commit would wait for
    the waiter, and the waiter for the holder: a deadlock, and an error page for one of them."""
    needs(connection.vendor == "postgresql", "this race needs PostgreSQL")
    incident, other = make_incident(), make_incident()
    before = change_counter.current(connection)
    holding, outcome = threading.Event(), {}

    def write_then_wait() -> None:
        try:
            holding.wait(10)
            with transaction.atomic():
                make_entry(incident=other, author=other.created_by, action="Elsewhere")
                Incident.objects.filter(pk=incident.pk).update(severity=1)
            outcome["done"] = True
        except Exception as exc:  # noqa: BLE001 - the failure is what is asserted
            outcome["error"] = exc
        finally:
            connections.close_all()

    waiter = threading.Thread(target=write_then_wait)
    with transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(title="Held")
        waiter.start()
        holding.set()
        waiter.join(0.5)
        assert waiter.is_alive(), "the second writer did not wait for the incident's row"
    waiter.join(10)

    assert outcome == {"done": True}
    assert change_counter.current(connection) == before + 2


def test_a_template_changed_under_runserver_empties_the_kept_pages(world):
    """runserver reloads a changed template without restarting; the counter cannot see it."""
    client, url = page(world, "incident_detail")
    client.get(url)
    assert len(kept_pages.PAGES) == 1

    file_changed.send(sender=None, file_path=Path("templates/base.html"))

    assert len(kept_pages.PAGES) == 0
