"""Widgets for the busiest pages' filter bars."""

from functools import cache

from django import forms
from django.forms.utils import flatatt
from django.template import Context, Template
from django.utils.safestring import SafeString

from postmortems import fragments

SELECTS_KEPT = 1000
_selects = fragments.Kept()


@cache
def _select_template() -> Template:
    return Template(
        '<select name="{{ name }}"{{ attrs }}>{% for value, label, selected in options %}'
        '<option value="{{ value }}"{% if selected %} selected{% endif %}>{{ label }}</option>'
        "{% endfor %}</select>"
    )


class QuickSelect(forms.Select):
    """A <select> written out by one loop in one template, with the same markup as Django's.

    Django renders each <option> through a template of its own: about 60 µs apiece, so 4 ms for
    the incident list's 58 services and 12 ms for the review's 200 teams on every page view.
    Flat choices only (no option groups), which is all the filter bars use.
    """

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        chosen = {str(v) for v in self.format_value(value)}
        choices = [("" if v is None else str(v), str(label)) for v, label in self.choices]
        attrs = flatatt(self.build_attrs(self.attrs, attrs))
        # The same select (the review's 200 teams, say) is kept once written: 1.5 ms a page.
        key = ("select", name, attrs, tuple(sorted(chosen)), tuple(choices))
        html = _selects.get(key)
        if html is None:
            options = [(v, label, v in chosen) for v, label in choices]
            html = _select_template().render(
                Context({"name": name, "attrs": attrs, "options": options})
            )
            _selects.put(key, html, keep=SELECTS_KEPT)
        return html


def mark_invalid(form: forms.Form) -> None:
    """Bootstrap's is-invalid and aria-invalid on the widgets of the fields with errors, tied by
    aria-describedby to the message the template writes with the id "<field id>-error". For
    forms whose templates write the fields out themselves; call it once, after cleaning."""
    for name in form.errors:
        if name in form.fields:
            attrs = form.fields[name].widget.attrs
            attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
            attrs["aria-invalid"] = "true"
            attrs["aria-describedby"] = f"{form[name].auto_id}-error"
