"""Forms for first-person accounts, the facilitator's annotations and the timeline's filters."""

import zoneinfo
from datetime import UTC, datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.urls import reverse
from django.utils import timezone

from .. import blameless
from ..models import ReviewQuestion, TimelineEntry

TEXT_MAX_CHARS = 20_000
QUESTION_MAX_CHARS = 2_000
# A person may note that something is about to happen, but not a whole day ahead.
FUTURE_LIMIT = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

# What each first-person field asks, in the person's own voice.
PROMPTS = {
    "action": "The commands you ran, the buttons you pressed, the messages you sent.",
    "observation": "What was on your screen, in the logs, in the channel: as you saw it.",
    "expectation": "What you thought would happen next.",
    "assumption": "What you took for granted, even if it turned out not to hold.",
    "understanding": "Your picture of the incident at that moment, before you knew the ending.",
}


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class TimelineEntryForm(forms.ModelForm):
    """One moment of the author's account. The time is read in the author's own zone."""

    occurred_at = forms.DateTimeField(
        label="When",
        input_formats=DATETIME_LOCAL_FORMATS,
        widget=DateTimeLocalInput(),
        error_messages={"invalid": "Enter a date and time, like 2026-03-04 10:30."},
    )
    evidence_url = forms.URLField(
        label="Evidence link",
        required=False,
        max_length=500,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        error_messages={"invalid": "Enter a web address starting with http:// or https://."},
        help_text="A log search, a graph, a chat message: optional.",
    )
    # The version the author started from: compared, never saved (services.revise_entry).
    version = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = TimelineEntry
        # Never author, incident, state, key_moment or version: those are not the form's to set.
        fields = [
            "occurred_at",
            "is_approximate",
            "action",
            "observation",
            "expectation",
            "assumption",
            "understanding",
            "kind",
            "basis",
            "evidence_url",
        ]
        labels = {
            "is_approximate": "Approximately",
            "basis": "This is",
        }
        help_texts = {"is_approximate": "Tick if you're not sure of the exact time."}
        widgets = {name: forms.Textarea(attrs={"rows": 3}) for name in TimelineEntry.TEXT_FIELDS}

    def __init__(self, *args, zone: zoneinfo.ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.fields["occurred_at"].help_text = f"In your time zone, {zone.key}."
        if self.instance.pk:
            # Show the stored moment in the author's zone, whatever zone is active.
            self.initial["occurred_at"] = timezone.localtime(
                self.instance.occurred_at, zone
            ).replace(tzinfo=None)
            self.initial["version"] = self.instance.version
        check_url = reverse("postmortems:language_check")
        for name in TimelineEntry.TEXT_FIELDS:
            field = self.fields[name]
            field.help_text = PROMPTS[name]
            field.widget.attrs.update(
                {
                    # No maxlength: a browser would silently cut pasted text. The server
                    # refuses a long text with a message and gives every word back.
                    "hx-post": check_url,
                    # keyup for typing; input too, for pasting and autofill, which fire no keyup.
                    "hx-trigger": "keyup changed delay:600ms, input changed delay:600ms, load",
                    "hx-target": f"#{self.findings_id(name)}",
                    "hx-swap": "innerHTML",
                    "hx-sync": "this:replace",
                    "aria-describedby": f"{self.findings_id(name)} {self[name].auto_id}_helptext",
                }
            )
        self.fields["kind"].label = "Kind of moment"
        self.fields["basis"].widget = forms.RadioSelect(choices=TimelineEntry.Basis.choices)

    def findings_id(self, name: str) -> str:
        return f"{self[name].auto_id}-findings"

    @property
    def text_fields(self) -> list[tuple[forms.BoundField, list[blameless.Finding]]]:
        """The five first-person fields, each with the language prompts for its current text."""
        result = []
        for name in TimelineEntry.TEXT_FIELDS:
            bound = self[name]
            text = str(bound.value() or "")
            result.append((bound, blameless.check(text)))
        return result

    def full_clean(self):
        # A datetime-local value has no zone: read it in the author's, not the server's.
        with timezone.override(self.zone):
            super().full_clean()

    def clean_occurred_at(self) -> datetime:
        value = self.cleaned_data["occurred_at"]
        try:
            value = value.astimezone(UTC)  # year 1 or 9999 may not survive the shift
            if value > timezone.now() + FUTURE_LIMIT:
                raise ValidationError(
                    "That is more than a day in the future. Check the date, and the year."
                )
            if value < EARLIEST:
                raise ValidationError("That date is too far in the past. Check the year.")
        except OverflowError as error:
            raise ValidationError("Check the year: that date is out of range.") from error
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in TimelineEntry.TEXT_FIELDS:
            words = self.data.get(self.add_prefix(name), "")
            if len(words) > TEXT_MAX_CHARS and name not in self.errors:
                self.add_error(name, _too_long(len(words)))
        if not cleaned.get("action") and not cleaned.get("observation"):
            if "action" not in self.errors and "observation" not in self.errors:
                message = "Tell us what you did, what you saw, or both."
                self.add_error("action", message)
                self.add_error("observation", message)
        return cleaned

    @property
    def posted_version(self) -> int | None:
        """The version the author started from, or None when missing or garbled."""
        try:
            return int(self.data.get(self.add_prefix("version"), ""))
        except ValueError:
            return None

    def save(self, commit: bool = True) -> TimelineEntry:
        self.instance.occurred_tz = self.zone.key
        return super().save(commit=commit)


def _too_long(length: int) -> str:
    return (
        f"Keep this under {TEXT_MAX_CHARS:,} characters (it has {length:,}). "
        "Split a long story into several moments."
    )


class KeyMomentForm(forms.ModelForm):
    class Meta:
        model = TimelineEntry
        fields = ["key_moment"]
        labels = {"key_moment": "Key moment"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key_moment"].choices = [
            ("", "Not a key moment"),
            *TimelineEntry.KeyMoment.choices,
        ]


class ReviewQuestionForm(forms.ModelForm):
    class Meta:
        model = ReviewQuestion
        fields = ["text"]
        labels = {"text": "Question for the review"}
        widgets = {"text": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "text": "Ask about the situation, not the person: “What did the dashboard show "
            "at this point?”"
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text"].max_length = QUESTION_MAX_CHARS
        self.fields["text"].widget.attrs.update(
            {
                "hx-post": reverse("postmortems:language_check"),
                "hx-trigger": "keyup changed delay:600ms, input changed delay:600ms",
                "hx-target": "#question-findings",
                "hx-swap": "innerHTML",
                "aria-describedby": "question-findings",
            }
        )

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if len(text) > QUESTION_MAX_CHARS:
            raise ValidationError(f"Keep a question under {QUESTION_MAX_CHARS:,} characters.")
        return text


class TimelineFilterForm(forms.Form):
    """The merged timeline's GET filters. An invalid value is reported and ignored."""

    VIEW_LIST = "list"
    VIEW_PERSPECTIVES = "perspectives"
    WINDOWS = (1, 2, 5, 10, 15, 30, 60)
    DEFAULT_WINDOW = 5

    person = forms.TypedChoiceField(label="Person", required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(
        label="Kind",
        required=False,
        choices=[("", "All kinds"), *TimelineEntry.Kind.choices],
    )
    view = forms.ChoiceField(
        label="View",
        required=False,
        choices=[(VIEW_LIST, "One list"), (VIEW_PERSPECTIVES, "Perspectives")],
    )
    window = forms.TypedChoiceField(
        label="Side by side within",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(minutes, f"{minutes} min") for minutes in WINDOWS],
    )
    as_of = forms.DateTimeField(
        label="As known at",
        required=False,
        input_formats=DATETIME_LOCAL_FORMATS,
        widget=DateTimeLocalInput(),
        help_text="Hide everything after this moment (your time).",
        error_messages={"invalid": "Enter a date and time, like 2026-03-04 10:30."},
    )

    def __init__(self, *args, authors, zone: zoneinfo.ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.fields["person"].choices = [("", "Everyone"), *((a.pk, a.name) for a in authors)]
        self.fields["window"].initial = self.DEFAULT_WINDOW

    def full_clean(self):
        with timezone.override(self.zone):
            super().full_clean()

    def clean_as_of(self) -> datetime | None:
        value = self.cleaned_data["as_of"]
        if value is None:
            return None
        try:
            value = value.astimezone(UTC)  # year 1 or 9999 may not survive the shift
            if value < EARLIEST:
                raise ValidationError("That date is too far in the past. Check the year.")
        except OverflowError as error:
            raise ValidationError("Check the year: that date is out of range.") from error
        return value

    def value(self, name: str, default=None):
        """The cleaned value of one filter, or `default` when it is missing or invalid."""
        if not self.is_bound:
            return default
        self.is_valid()
        value = self.cleaned_data.get(name)
        return default if value in (None, "") else value
