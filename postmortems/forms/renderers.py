"""The form renderer (settings.FORM_RENDERER): Django's, keeping each widget's HTML.

Django writes every widget through its templates (input.html, then attrs.html, and so on): a
few hundred microseconds apiece, so the "my account" page's entry form cost 4 ms and every
filter bar one or two. Most widgets a page shows are the same on every view (an empty form, a
filter as it was), so the HTML is kept, in this process, under a key made of everything the
widget's template reads. A key is built only from plain values (text, numbers, dates, and
lists and dicts of them), each with whether it is already safe HTML, so two widgets with one
key are the same HTML; a widget holding anything else (lazy text too) is rendered every time.
"""

import datetime
import decimal

from django.forms.renderers import DjangoTemplates
from django.utils import translation
from django.utils.safestring import SafeData

from postmortems import fragments

WIDGETS_KEPT = 5000
_widgets = fragments.Kept()
_PLAIN = (bool, int, float, decimal.Decimal, datetime.date, datetime.time, datetime.timedelta)


class Uncacheable(Exception):
    """A value whose HTML cannot be told from its key."""


def freeze(value):
    """A hashable stand-in for `value` that differs whenever its rendering could differ."""
    if value is None or isinstance(value, _PLAIN):
        # The type too: True and 1 print differently; so do a date and a datetime.
        return (type(value).__name__, value, getattr(value, "tzinfo", None))
    if isinstance(value, str):
        return ("safe" if isinstance(value, SafeData) else "str", str(value))
    if isinstance(value, dict):
        return ("dict", tuple((freeze(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(freeze(item) for item in value))
    raise Uncacheable(type(value).__name__)


class KeptWidgets(DjangoTemplates):
    def render(self, template_name, context, request=None):
        if request is not None or not template_name.startswith("django/forms/widgets/"):
            return super().render(template_name, context, request)
        try:
            key = (template_name, translation.get_language(), freeze(context))
        except Uncacheable:
            return super().render(template_name, context, request)
        html = _widgets.get(key)
        if html is None:
            html = super().render(template_name, context, request)
            _widgets.put(key, html, keep=WIDGETS_KEPT)
        return html
