"""Forms for opening and editing incidents, adding participants, and filtering the list."""

import re
import zoneinfo
from datetime import datetime, timedelta

from django import forms
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import User
from postmortems.forms.people import PersonField
from postmortems.forms.widgets import QuickSelect, mark_invalid
from postmortems.models import Incident, Participant, Service

SERVICE_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
MAX_SERVICES = 20
MAX_SERVICE_LENGTH = Service._meta.get_field("name").max_length
# Long enough for any summary worth reading; short enough that a pasted log file is caught.
MAX_TEXT_LENGTH = 20_000
FUTURE_GRACE = timedelta(days=1)
DATETIME_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


def parse_service_names(text: str) -> list[str]:
    """Split "Checkout-API, payments" into normalised names; ValidationError on a bad one."""
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if name and name not in names:
            names.append(name)
    errors = []
    for name in names:
        if len(name) > MAX_SERVICE_LENGTH:
            errors.append(
                f"“{name[:30]}…” is {len(name)} characters long; "
                f"a service name can have at most {MAX_SERVICE_LENGTH}."
            )
        elif not SERVICE_NAME_RE.match(name):
            errors.append(
                f"“{name}” can only contain letters, digits, hyphens (-) and underscores (_)."
            )
    if len(names) > MAX_SERVICES:
        errors.append(
            f"That is {len(names)} services; an incident can list at most {MAX_SERVICES}."
        )
    if errors:
        raise forms.ValidationError(errors)
    return names


class LocalDateTimeField(forms.DateTimeField):
    """A datetime-local input read and shown in the editor's own time zone, not the server's."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT_FORMAT)
    input_formats = [DATETIME_INPUT_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

    def __init__(self, *args, tz: zoneinfo.ZoneInfo | None = None, **kwargs):
        self.tz = tz or zoneinfo.ZoneInfo("UTC")
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        with timezone.override(self.tz):
            return super().prepare_value(value)

    def to_python(self, value):
        # Django makes the parsed time aware in the active zone and rejects times that do not
        # exist or happen twice there (daylight saving changes): make that zone the editor's.
        with timezone.override(self.tz):
            value = super().to_python(value)
        # Far-off years overflow when converted to UTC, and are always a typing slip.
        if value is not None and not 1970 <= value.year <= 2100:
            raise forms.ValidationError("Enter a time between 1970 and 2100.", code="out_of_range")
        return value


class IncidentForm(forms.ModelForm):
    """Open or edit an incident. Times are entered in the editor's zone, passed as `tz`."""

    services = forms.CharField(
        label="Affected services",
        required=False,
        max_length=2000,
        help_text=(
            "Comma-separated, e.g. “checkout-api, payments”. Letters, digits, - and _; "
            f"up to {MAX_SERVICES}. New names are added as you save."
        ),
    )

    class Meta:
        model = Incident
        fields = [
            "title",
            "severity",
            "status",
            "visibility",
            "summary",
            "customer_impact",
            "started_at",
            "detected_at",
            "mitigated_at",
            "resolved_at",
        ]
        widgets = {
            "severity": forms.RadioSelect,
            "visibility": forms.RadioSelect,
            "summary": forms.Textarea(attrs={"rows": 4}),
            "customer_impact": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {
            "started_at": "Started",
            "detected_at": "Detected",
            "mitigated_at": "Mitigated",
            "resolved_at": "Resolved",
        }
        help_texts = {
            "title": "What went wrong, in a few words a colleague would recognise.",
            "summary": "What happened, briefly. The detail comes from everyone's accounts.",
            "customer_impact": "Who was affected and how, as far as you know now.",
        }

    def __init__(self, *args, tz: zoneinfo.ZoneInfo | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz = tz or zoneinfo.ZoneInfo("UTC")
        zone_name = str(self.tz).replace("_", " ")
        for name in Incident.KEY_MOMENTS:
            self.fields[name] = LocalDateTimeField(
                required=False,
                tz=self.tz,
                label=self._meta.labels[name],
                help_text=f"Optional. Your time zone: {zone_name}.",
            )
        for name in ("summary", "customer_impact"):
            self.fields[name].validators.append(MaxLengthValidator(MAX_TEXT_LENGTH))
        # No maxlength attribute: browsers cut pasted text short without a word. The server
        # says how long it was instead.
        self.fields["title"].widget.attrs.pop("maxlength", None)
        # The model field's blank choice is noise on radio buttons that have a default.
        self.fields["severity"].choices = Incident.Severity.choices
        self.fields["visibility"].choices = Incident.Visibility.choices
        if self.instance.pk and not self.is_bound:
            self.initial["services"] = ", ".join(s.name for s in self.instance.services.all())

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("Give the incident a title.")
        return title

    def clean_services(self) -> list[str]:
        return parse_service_names(self.cleaned_data.get("services", ""))

    def clean(self):
        cleaned = super().clean()
        self._check_not_in_future(cleaned)
        self._check_order(cleaned)
        return cleaned

    def _label(self, name: str) -> str:
        return self.fields[name].label

    def _show(self, value: datetime) -> str:
        return date_format(value.astimezone(self.tz), "j M Y, H:i")

    def _check_not_in_future(self, cleaned: dict) -> None:
        limit = timezone.now() + FUTURE_GRACE
        for name in Incident.KEY_MOMENTS:
            value = cleaned.get(name)
            if value and value > limit:
                self.add_error(
                    name,
                    f"{self._label(name)} ({self._show(value)}) is more than a day in the "
                    "future. Times are in your own time zone; is the date right?",
                )

    def _check_order(self, cleaned: dict) -> None:
        """started ≤ detected ≤ mitigated ≤ resolved, comparing only the moments that are set."""
        moments = Incident.KEY_MOMENTS
        for later_index, later in enumerate(moments):
            later_value = cleaned.get(later)
            if not later_value or later in self.errors:
                continue
            for earlier in moments[:later_index]:
                earlier_value = cleaned.get(earlier)
                if earlier_value and earlier_value > later_value:
                    self.add_error(
                        later,
                        f"{self._label(later)} ({self._show(later_value)}) is before "
                        f"{self._label(earlier).lower()} ({self._show(earlier_value)}). "
                        "Key moments go in the order started, detected, mitigated, resolved.",
                    )
                    break


class ParticipantForm(forms.ModelForm):
    """Add a person to an incident: someone already here, or a new person by email."""

    user = PersonField(
        label="Someone already here",
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="Their email address or name.",
        error_messages={
            "no_match": "No one here matches “%(value)s”. For someone new, type their email "
            "address under “Or their email address” instead.",
        },
    )
    email = forms.EmailField(
        label="Or their email address",
        required=False,
        help_text="Someone new gets an invitation to join, then the request for their account.",
    )
    display_name = forms.CharField(
        label="Their name (for someone new)", max_length=150, required=False
    )

    class Meta:
        model = Participant
        fields = ["role"]
        help_texts = {"role": "Facilitators and co-facilitators may edit the incident."}

    def __init__(self, *args, incident: Incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.incident = incident
        self.fields["role"].initial = Participant.Role.RESPONDER

    def clean(self):
        cleaned = super().clean()
        user, email = cleaned.get("user"), cleaned.get("email")
        if "user" in self.errors or "email" in self.errors:
            return cleaned
        if user and email and user.email.lower() != email.lower():
            raise forms.ValidationError(
                "Name someone already here or type a new person's email address, not both."
            )
        if not user and not email:
            raise forms.ValidationError(
                "Name someone already here, or type the email address of someone new."
            )
        if not user:
            user = User.objects.filter(email__iexact=email).first()
            if user is not None and not user.is_active and user.has_usable_password():
                self.add_error(
                    "email",
                    f"{email} belongs to an account that has been switched off. "
                    "An admin can switch it back on.",
                )
                return cleaned
        if user is not None:
            already = Participant.objects.filter(incident=self.incident, user=user).first()
            if already is not None:
                raise forms.ValidationError(
                    f"{user.name} is already on this incident as "
                    f"{already.get_role_display().lower()}."
                )
        # `user` None with an email means someone new: the service invites them.
        cleaned["user"] = user
        return cleaned


class IncidentFilterForm(forms.Form):
    """The list's filters. Every field is optional; a bad value is reported and ignored."""

    SORTS = {
        "newest": ("-created_at", "-pk"),
        "oldest": ("created_at", "pk"),
        "severity": ("severity", "-created_at", "-pk"),
    }
    PAGE_LABELS = {
        "newest": ("Newer", "Older"),
        "oldest": ("Older", "Newer"),
        "severity": ("Previous", "Next"),
    }

    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *Incident.Status.choices],
        widget=QuickSelect,
        error_messages={"invalid_choice": "There is no status called “%(value)s”."},
    )
    severity = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any severity"), *[(s.value, f"SEV{s.value}") for s in Incident.Severity]],
        widget=QuickSelect,
        error_messages={"invalid_choice": "Severity goes from 1 (SEV1) to 4 (SEV4)."},
    )
    # Names, not Service objects: one light query fills the choices and checks the value.
    service = forms.ChoiceField(
        required=False,
        widget=QuickSelect,
        error_messages={"invalid_choice": "No service is called “%(value)s”."},
    )
    participant = PersonField(
        required=False,
        help_text="",
        widget=forms.TextInput(attrs={"placeholder": "Email or name"}),
        error_messages={"no_match": "No one matches “%(value)s”."},
    )
    opened_from = forms.DateField(
        label="Opened from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    opened_to = forms.DateField(
        label="Opened until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    # Not a ChoiceField: an unknown sort key is quietly ignored rather than reported.
    sort = forms.CharField(
        label="Sort by",
        required=False,
        widget=QuickSelect(
            choices=[
                ("newest", "Newest first"),
                ("oldest", "Oldest first"),
                ("severity", "Most severe first"),
            ]
        ),
    )

    def __init__(self, *args, tz: zoneinfo.ZoneInfo | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz = tz or zoneinfo.ZoneInfo("UTC")
        # By name in the URL, by id in the query: joined to the services by name, PostgreSQL
        # looked up a service for each link of each candidate incident.
        self.service_ids = dict(Service.objects.order_by("name").values_list("name", "pk"))
        self.fields["service"].choices = [("", "Any service"), *((n, n) for n in self.service_ids)]
        # The template writes the fields out itself (crispy's per-field templates cost ~1 ms
        # per page here), so the Bootstrap classes are set on the widgets.
        for field in self.fields.values():
            is_select = isinstance(field.widget, forms.Select)
            field.widget.attrs["class"] = "form-select" if is_select else "form-control"

    def _clean_day(self, name: str):
        day = self.cleaned_data.get(name)
        # Far-off years overflow when turned into a time in the viewer's zone.
        if day and not 1970 <= day.year <= 2100:
            raise forms.ValidationError("Choose a date between 1970 and 2100.")
        return day

    def clean_opened_from(self):
        return self._clean_day("opened_from")

    def clean_opened_to(self):
        return self._clean_day("opened_to")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("opened_from"), cleaned.get("opened_to")
        if start and end and start > end:
            self.add_error("opened_to", "“Opened until” is before “opened from”.")
        return cleaned

    def valid_value(self, name: str):
        """The field's cleaned value, or None when it was left empty or was not valid."""
        if name in self.errors:
            return None
        return self.cleaned_data.get(name)

    def filter(self, incidents):
        """Apply whichever filters are valid; ignore the rest (they are shown as errors)."""
        self.is_valid()  # Fills cleaned_data with the valid fields, errors with the others.
        mark_invalid(self)
        if value := self.valid_value("q"):
            incidents = incidents.search(value)
        if value := self.valid_value("status"):
            incidents = incidents.filter(status=value)
        if value := self.valid_value("severity"):
            incidents = incidents.filter(severity=value)
        if value := self.valid_value("service"):
            tagged = Incident.services.through.objects.filter(service_id=self.service_ids[value])
            incidents = incidents.filter(pk__in=tagged.values("incident_id"))
        if value := self.valid_value("participant"):
            incidents = incidents.filter(
                pk__in=Participant.objects.filter(user=value).values("incident")
            )
        # Dates are whole days in the viewer's own zone, both ends included.
        if (value := self.valid_value("opened_from")) and "opened_to" not in self.errors:
            incidents = incidents.filter(created_at__gte=self._midnight(value))
        if value := self.valid_value("opened_to"):
            incidents = incidents.filter(created_at__lt=self._midnight(value + timedelta(days=1)))
        return incidents.order_by(*self.ordering())

    def ordering(self) -> tuple[str, ...]:
        """The chosen sort; each ends with the primary key, so the list can page by keyset."""
        return self.SORTS.get(self.valid_value("sort"), self.SORTS["newest"])

    def page_labels(self) -> tuple[str, str]:
        """What the links to the previous and the next page say, in this sort's own words."""
        return self.PAGE_LABELS.get(self.valid_value("sort"), self.PAGE_LABELS["newest"])

    def _midnight(self, day) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)

    @property
    def is_filtered(self) -> bool:
        return any(self.valid_value(name) for name in self.fields if name != "sort")
