"""Markdown and PDF exports: what is in them, what never is, and what they never fetch."""

import socket
from datetime import UTC, date, datetime

import markdown
import pytest
from django.urls import reverse

from postmortems.models import ActionItem, Postmortem
from postmortems.services import writeups as services
from tests.factories import (
    make_action_item,
    make_entry,
    make_factor,
    make_incident,
    make_postmortem,
    make_user,
)
from tests.postmortems.test_rendering import XSS_CORPUS, problems_in

DRAFT_MARKER = "DRAFT-ENTRY-MARKER-7f3a"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: exports must fetch nothing external."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the export tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def published():
    facilitator = make_user(is_facilitator=True, display_name="Fran Facilitator")
    incident = make_incident(facilitator=facilitator, title="Checkout errors")
    postmortem = make_postmortem(
        incident=incident,
        status=Postmortem.Status.PUBLISHED,
        summary="<!-- prompt -->\nThe **cache** expired.",
        narrative="At 14:00 the replica fell behind.",
    )
    alice = make_user(display_name="Alice Responder")
    shared = make_entry(
        incident=incident,
        author=alice,
        occurred_at=datetime(2026, 3, 2, 13, 5, tzinfo=UTC),
        action="Rolled back deploy 42",
        assumption="The deploy was the cause",
    )
    make_entry(incident=incident, author=alice, action=DRAFT_MARKER, shared=False)
    factor = make_factor(postmortem=postmortem, description="Replica lag had no alert")
    factor.entries.add(shared)
    make_action_item(
        incident=incident,
        title="Alert on replica lag",
        owner=make_user(display_name="Omar Owner"),
        due_on=date(2026, 4, 1),
        status=ActionItem.Status.IN_PROGRESS,
    )
    return postmortem


def export(client, postmortem, kind: str):
    name = "postmortem_export_markdown" if kind == "md" else "postmortem_export_pdf"
    return client.get(reverse(f"postmortems:{name}", args=[postmortem.incident_id]))


@pytest.mark.django_db
def test_the_markdown_export_is_a_utf8_attachment_with_everything_but_drafts(client, published):
    client.force_login(make_user())

    response = export(client, published, "md")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="{published.incident.human_id}-postmortem.md"'
    )
    text = response.content.decode("utf-8")
    assert text.startswith(f"# Postmortem: {published.incident.human_id} Checkout errors")
    assert "The **cache** expired." in text
    assert "prompt" not in text
    assert "## Contributing factors" in text and "Replica lag had no alert" in text
    assert "Rolled back deploy 42" in text
    assert "Alice Responder" in text
    assert "| Alert on replica lag | Omar Owner | 1 Apr 2026 | In progress |" in text
    assert DRAFT_MARKER not in text


@pytest.mark.django_db
def test_the_export_shows_times_in_the_viewers_zone(client, published):
    client.force_login(make_user(time_zone="Asia/Tokyo"))

    text = export(client, published, "md").content.decode()

    assert "2 Mar 2026, 22:05" in text  # 13:05 UTC
    assert "Asia/Tokyo" in text


@pytest.mark.django_db
def test_user_text_in_the_markdown_export_cannot_inject_html_or_links(client):
    facilitator = make_user(is_facilitator=True, display_name="<img src=x onerror=alert(1)>")
    incident = make_incident(facilitator=facilitator, title="[t](javascript:alert(1)) <script>")
    corpus = "\n\n".join(XSS_CORPUS)
    postmortem = make_postmortem(
        incident=incident, status=Postmortem.Status.PUBLISHED, summary=corpus, impact=corpus
    )
    make_factor(postmortem=postmortem, description=corpus)
    make_entry(incident=incident, author=facilitator, action=corpus, observation=corpus)
    make_action_item(incident=incident, title="<script>alert(1)</script> | x", owner=facilitator)
    client.force_login(make_user())

    text = export(client, postmortem, "md").content.decode()

    # Even a renderer that does no sanitising of its own shows it all as inert text.
    naive = markdown.markdown(text, extensions=["fenced_code", "tables"])
    assert problems_in(naive) == []


@pytest.mark.django_db
def test_the_pdf_export_is_a_pdf_attachment(client, published, no_network):
    client.force_login(make_user())

    response = export(client, published, "pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="{published.incident.human_id}-postmortem.pdf"'
    )


@pytest.mark.django_db
def test_the_html_behind_the_pdf_has_shared_entries_factors_and_items_but_no_draft(published):
    html = services.export_html(published)

    assert "Rolled back deploy 42" in html
    assert "The deploy was the cause" in html
    assert "Replica lag had no alert" in html
    assert "Alert on replica lag" in html and "Omar Owner" in html
    assert "<strong>cache</strong>" in html
    assert DRAFT_MARKER not in html


@pytest.mark.django_db
def test_the_pdf_fetches_only_its_own_stylesheet_and_refuses_everything_else(published, no_network):
    corpus = "\n\n".join(XSS_CORPUS)
    published.summary = corpus
    published.save()
    html = services.export_html(published)
    # Whatever slipped through would be refused; add what a sanitiser would never let in.
    html = html.replace(
        "</body>",
        '<img src="http://evil.example/p.png"><img src="file:///etc/passwd">'
        '<link rel="stylesheet" href="https://evil.example/x.css">'
        '<img src="/static/../../postmortems/settings.py"></body>',
    )
    fetcher = services.static_fetcher()

    pdf = services.export_pdf(html, fetcher)

    assert pdf.startswith(b"%PDF")
    assert fetcher.served == ["http://testserver/static/css/print.css"]
    assert "http://evil.example/p.png" in fetcher.refused
    assert "file:///etc/passwd" in fetcher.refused
    assert "https://evil.example/x.css" in fetcher.refused


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/static/css/print.css",
        "file:///etc/passwd",
        "data:text/css,body{}",
        "http://testserver/static/../manage.py",
        "http://testserver/static/%2e%2e/manage.py",
        "http://testserver/media/x.png",
    ],
)
def test_the_pdf_fetcher_refuses_anything_outside_static(url, settings):
    settings.SITE_URL = "http://testserver"

    assert services.static_path(url) is None


@pytest.mark.django_db
def test_the_pdf_of_hostile_markdown_renders_without_fetching_anything(client, no_network):
    incident = make_incident(title="<script>alert(1)</script>")
    postmortem = make_postmortem(
        incident=incident, status=Postmortem.Status.PUBLISHED, summary="\n\n".join(XSS_CORPUS)
    )
    client.force_login(make_user())

    response = export(client, postmortem, "pdf")

    assert response.content.startswith(b"%PDF")
    assert problems_in(services.export_html(postmortem).split("</head>", 1)[1]) == []


@pytest.mark.django_db
def test_an_unpublished_write_up_exports_for_editors_only_with_a_banner(client):
    facilitator = make_user(is_facilitator=True)
    postmortem = make_postmortem(incident=make_incident(facilitator=facilitator), summary="Draft")
    client.force_login(make_user())
    assert export(client, postmortem, "md").status_code == 403

    client.force_login(facilitator)
    response = export(client, postmortem, "md")

    assert response.status_code == 200
    assert "not published; this text may still change" in response.content.decode()


@pytest.mark.django_db
def test_there_is_nothing_to_export_before_a_write_up_exists(client):
    facilitator = make_user(is_facilitator=True)
    incident = make_incident(facilitator=facilitator)
    client.force_login(facilitator)

    response = client.get(reverse("postmortems:postmortem_export_markdown", args=[incident.pk]))

    assert response.status_code == 404


def test_the_pdf_fetcher_serves_the_hashed_copy_from_static_root(settings, tmp_path):
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "print.0123abcd.css").write_text("body {}")
    settings.STATIC_ROOT = tmp_path
    settings.SITE_URL = "http://testserver"

    path = services.static_path("http://testserver/static/css/print.0123abcd.css")

    assert path == str(tmp_path / "css" / "print.0123abcd.css")
    assert services.static_path("http://testserver/static/css/../../etc/passwd") is None
