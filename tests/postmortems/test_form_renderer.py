"""The form renderer keeps widgets' HTML (postmortems/forms/renderers.py): what it gives is
exactly what Django's own renderer writes, for every widget of the busiest forms, with or
without the user's text in them; and a widget it cannot key is rendered, never kept."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe

from accounts.models import Team
from postmortems.forms import renderers
from postmortems.forms.action_items import ActionItemFilterForm
from postmortems.forms.incidents import IncidentFilterForm
from postmortems.forms.timeline import TimelineEntryForm
from tests.factories import make_entry, make_team

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
NASTY = "Rolled back <script>alert(1)</script> & said \"it's fine\"\nthen 'waited'"


def busy_forms() -> list[forms.Form]:
    make_team(name="Payments & <Search>")
    teams = Team.objects.values_list("pk", "name")
    entry = make_entry(action=NASTY, evidence_url="https://logs.example.com/?a=1&b=<2>")
    return [
        TimelineEntryForm(zone=BERLIN),
        TimelineEntryForm(instance=entry, zone=BERLIN, prefix=f"entry-{entry.pk}"),
        TimelineEntryForm({"action": NASTY, "occurred_at": "not a date"}, zone=BERLIN),
        IncidentFilterForm({"q": NASTY, "status": "resolved", "opened_from": "2026-02-30"}, tz=UTC),
        IncidentFilterForm({}, tz=UTC),
        ActionItemFilterForm(
            {"team": "all", "status": ["open", "done"], "overdue": "on"},
            teams=teams,
            is_manager=True,
            may_review=True,
        ),
    ]


def rendered(form: forms.Form, renderer) -> list[str]:
    form.renderer = renderer
    return [str(field) for field in form]


def test_every_widget_is_what_djangos_renderer_writes_first_time_and_kept():
    django_renderer, kept = DjangoTemplates(), renderers.KeptWidgets()

    for form in busy_forms():
        expected = rendered(form, django_renderer)
        assert rendered(form, kept) == expected, type(form).__name__
        assert rendered(form, kept) == expected, type(form).__name__  # now from memory

    assert len(renderers._widgets) > 20
    assert any("&lt;script&gt;" in html for html in renderers._widgets._pieces.values())


def test_safe_and_plain_text_true_and_one_are_different_keys():
    assert renderers.freeze("<b>") != renderers.freeze(mark_safe("<b>"))
    assert renderers.freeze(True) != renderers.freeze(1)
    assert renderers.freeze(datetime(2026, 1, 1, tzinfo=UTC)) != renderers.freeze(
        datetime(2026, 1, 1, 1, tzinfo=BERLIN)
    )


def test_a_widget_holding_an_object_it_cannot_key_is_rendered_and_not_kept():
    class Opaque:
        def __str__(self) -> str:
            return "opaque value"

    widget = forms.TextInput(attrs={"data-note": Opaque()})
    first = widget.render("name", "words", renderer=renderers.KeptWidgets())

    assert 'data-note="opaque value"' in first
    assert len(renderers._widgets) == 0
    with pytest.raises(renderers.Uncacheable):
        renderers.freeze({"widget": {"value": Opaque()}})


def test_the_project_uses_it(settings):
    assert settings.FORM_RENDERER == "postmortems.forms.renderers.KeptWidgets"
    assert isinstance(forms.Form().renderer, renderers.KeptWidgets)
