"""A person typed as an email address or a name, never picked from a list of everyone.

A <select> over every account rendered 5,000 <option>s per page at 5,000 people (most of the
incident list's time, docs/performance.md). Numeric ids are still read, for links that carry one
(`?owner=42` on the home page) and for older forms.
"""

from django import forms
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts.models import User
from postmortems.models.incidents import MAX_PK

# How many people an ambiguous name lists back; enough to pick from, short enough to read.
MAX_SUGGESTIONS = 5


def find_person(people: QuerySet[User], text: str) -> list[User]:
    """The people in `people` that `text` names: [one] when it is unambiguous, [] when nobody
    matches, several (at most MAX_SUGGESTIONS + 1) when it could be any of them."""
    text = text.strip()
    if not text:
        return []
    if text.isdigit():
        # An id from a link. Too large a number is nobody, not a database error.
        return list(people.filter(pk=int(text))[:1]) if int(text) <= MAX_PK else []
    if "@" in text:
        exact = list(people.filter(email__iexact=text)[:1])
        if exact:
            return exact
    # Exact names first, so that "Mei Chen" is found even when "Mei Cheng" exists too.
    candidates = list(
        people.filter(Q(display_name__icontains=text) | Q(email__istartswith=text))
        .annotate(
            exact=Case(
                When(display_name__iexact=text, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("exact", "display_name", "email")[: MAX_SUGGESTIONS + 1]
    )
    exact = [person for person in candidates if person.exact == 0]
    if len(exact) == 1:
        return exact
    return candidates


class PersonField(forms.Field):
    """A text box for an email address or a name; cleans to a User (or None when empty)."""

    widget = forms.TextInput
    default_error_messages = {
        "no_match": "No one matches “%(value)s”. Check the spelling, or type their email address.",
        "ambiguous": "More than one person matches “%(value)s”: %(names)s. "
        "Type more of the name, or their email address.",
        "too_long": "That is too long for a name or an email address.",
    }
    max_length = 254

    def __init__(self, *, queryset: QuerySet[User] | None = None, **kwargs):
        kwargs.setdefault("help_text", "Their email address or name.")
        super().__init__(**kwargs)
        self.queryset = queryset if queryset is not None else User.objects.all()
        # Typed text → the person it found, so the box shows their address after a search.
        self.found: dict[str, User] = {}

    def __deepcopy__(self, memo):
        result = super().__deepcopy__(memo)
        result.queryset = self.queryset.all()
        result.found = {}
        return result

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.update({"autocomplete": "off", "spellcheck": "false", "maxlength": self.max_length})
        return attrs

    def prepare_value(self, value):
        if isinstance(value, User):
            return value.email
        if isinstance(value, str | int) and str(value).strip() in self.found:
            return self.found[str(value).strip()].email
        return value

    def to_python(self, value) -> User | None:
        if isinstance(value, User):
            return value
        text = "" if value in self.empty_values else str(value).strip()
        if not text:
            return None
        if text in self.found:
            return self.found[text]
        if len(text) > self.max_length:
            raise forms.ValidationError(self.error_messages["too_long"], code="too_long")
        if "\x00" in text:  # PostgreSQL refuses them in a query: a 500, not a "no one"
            raise forms.ValidationError(
                self.error_messages["no_match"],
                code="no_match",
                params={"value": text.replace("\x00", "")},
            )
        matches = find_person(self.queryset, text)
        if not matches:
            raise forms.ValidationError(
                self.error_messages["no_match"], code="no_match", params={"value": text}
            )
        if len(matches) > 1:
            shown = matches[:MAX_SUGGESTIONS]
            names = ", ".join(f"{person.name} ({person.email})" for person in shown)
            if len(matches) > MAX_SUGGESTIONS:
                names += " and more"
            raise forms.ValidationError(
                self.error_messages["ambiguous"],
                code="ambiguous",
                params={"value": text, "names": names},
            )
        self.found[text] = matches[0]
        return matches[0]

    def has_changed(self, initial, data) -> bool:
        initial_pk = initial.pk if isinstance(initial, User) else initial
        try:
            person = self.to_python(data)
        except forms.ValidationError:
            return True
        return str(initial_pk or "") != str(person.pk if person else "")
