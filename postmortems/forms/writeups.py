from urllib.parse import urlsplit

from django import forms
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from postmortems.models import (
    ContributingFactor,
    Incident,
    Postmortem,
    ReviewMeeting,
    TimelineEntry,
)
from postmortems.models.incidents import MAX_PK
from postmortems.services.writeups import SECTION_LABELS, SECTION_PROMPTS


class PostmortemForm(forms.ModelForm):
    """The write-up's sections. `version` is the version the editor started from."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    class Meta:
        model = Postmortem
        fields = list(Postmortem.SECTIONS)

    def __init__(self, *args, language_check_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "version" not in self.initial:
            self.initial["version"] = self.instance.version
        for name in Postmortem.SECTIONS:
            field = self.fields[name]
            # Leading spaces are Markdown (an indented code block); keep the text as typed.
            field.strip = False
            field.label = SECTION_LABELS[name]
            field.help_text = SECTION_PROMPTS[name]
            field.widget = forms.Textarea(
                attrs={
                    "rows": 12 if name == "narrative" else 6,
                    "placeholder": SECTION_PROMPTS[name],
                    "class": "font-monospace postmortem-editor-text",
                    "aria-describedby": f"id_{name}_helptext findings-{name}",
                }
            )
            if language_check_url:
                # Live prompts while typing; the same findings also come back on save/preview.
                field.widget.attrs.update(
                    {
                        "hx-post": language_check_url,
                        "hx-trigger": "keyup changed delay:600ms",
                        "hx-target": f"#findings-{name}",
                        "hx-swap": "innerHTML",
                        "hx-params": f"{name},field",
                        "hx-vals": f'{{"field": "{name}"}}',
                    }
                )

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in Postmortem.SECTIONS:
            # Browsers send CRLF; without this every save would "change" every section.
            if isinstance(cleaned.get(name), str):
                cleaned[name] = cleaned[name].replace("\r\n", "\n").replace("\r", "\n")
        return cleaned

    def section_data(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in Postmortem.SECTIONS}


class BoundedIdsMixin:
    """Ids beyond the database's integers are not ids: refused as invalid, not a server error
    (SQLite cannot even bind them in the `IN (...)` that checks the choices)."""

    def _check_values(self, value):
        for pk in value:
            try:
                number = int(str(pk).strip())
            except ValueError:
                continue  # Django's own check reports it
            if not -MAX_PK - 1 <= number <= MAX_PK:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        return super()._check_values(value)


class EntryChoiceField(BoundedIdsMixin, forms.ModelMultipleChoiceField):
    def label_from_instance(self, entry: TimelineEntry) -> str:
        when = timezone.localtime(entry.occurred_at).strftime("%d %b %H:%M")
        approximately = "~" if entry.is_approximate else ""
        return f"{approximately}{when} · {entry.author.name}: {entry}"


class FactorForm(forms.ModelForm):
    """One contributing factor, linked to shared entries of this incident's timeline."""

    entries = EntryChoiceField(
        queryset=TimelineEntry.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Linked timeline entries",
        help_text="The moments in people's accounts where this factor shows.",
    )

    class Meta:
        model = ContributingFactor
        fields = ["category", "description", "entries"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        help_texts = {
            "description": (
                "A condition that made the outcome possible, not a person to blame. Markdown."
            )
        }

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, **kwargs)
        # Only shared entries: a draft is its author's alone, and could not be linked honestly.
        self.fields["entries"].queryset = (
            TimelineEntry.objects.filter(incident=incident, state=TimelineEntry.State.SHARED)
            .select_related("author")
            .order_by("occurred_at", "pk")
        )


class TransitionForm(forms.Form):
    comment = forms.CharField(
        label="Comment",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
    )

    def __init__(self, *args, needs_comment: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if needs_comment:
            self.fields["comment"].required = True
            self.fields["comment"].label = "Reason"
            self.fields["comment"].error_messages["required"] = (
                "Please say why: the people involved will read it in the review trail."
            )

    def clean_comment(self) -> str:
        return self.cleaned_data["comment"].strip()


class AttendeeChoiceField(BoundedIdsMixin, forms.ModelMultipleChoiceField):
    def label_from_instance(self, user: User) -> str:
        return f"{user.name} <{user.email}>"


class MeetingForm(forms.ModelForm):
    starts_at = forms.DateTimeField(
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)", min_value=5, max_value=8 * 60, initial=60
    )
    attendees = AttendeeChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="The incident's participants, all selected to begin with. To invite someone "
        "else, add them to the incident as a participant first.",
        error_messages={
            "invalid_choice": "Only the incident's participants can be invited; add them to the "
            "incident as participants first."
        },
    )

    class Meta:
        model = ReviewMeeting
        fields = ["starts_at", "duration_minutes", "location", "video_url", "attendees"]
        help_texts = {
            "location": "A room, or leave empty for a video call only.",
            "video_url": "An http or https link to the call.",
        }

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.incident = incident
        zone = timezone.get_current_timezone_name()
        self.fields["starts_at"].help_text = f"In your time zone ({zone})."
        # The incident's people, not everyone: a list of every account is thousands of options.
        people = Q(is_active=True, pk__in=incident.participants.values("user"))
        if self.instance.pk:
            # Someone deactivated or removed since the invite stays listed, not silently dropped.
            people |= Q(pk__in=self.instance.attendees.values("pk"))
        self.fields["attendees"].queryset = User.objects.filter(people)
        if self.instance.pk is None and "attendees" not in self.initial:
            self.initial["attendees"] = list(
                incident.participants.filter(user__is_active=True).values_list("user", flat=True)
            )

    def clean_video_url(self) -> str:
        url = self.cleaned_data["video_url"]
        if url and urlsplit(url).scheme.lower() not in ("http", "https"):
            raise forms.ValidationError("Use an http:// or https:// link.")
        return url

    def clean_attendees(self):
        attendees = self.cleaned_data["attendees"]
        if self.incident.is_restricted:
            # The invite names the incident; a restricted one may only reach people who see it.
            participant_ids = set(self.incident.participants.values_list("user", flat=True))
            outsiders = [
                person
                for person in attendees
                if person.pk not in participant_ids and not person.is_superuser
            ]
            if outsiders:
                names = ", ".join(person.name for person in outsiders)
                raise forms.ValidationError(
                    f"This incident is restricted; add them as participants first: {names}."
                )
        return attendees
