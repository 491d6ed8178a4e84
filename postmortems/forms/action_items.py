"""Forms for action items: create, change status/owner/due date, and the review's filters."""

from urllib.parse import urlsplit

from django import forms
from django.utils import timezone

from accounts.models import Team, User
from postmortems import quality
from postmortems.forms.people import PersonField
from postmortems.forms.widgets import QuickSelect, mark_invalid
from postmortems.models import ActionItem, ContributingFactor, Incident, Participant

# Statuses that make sense for a brand-new item; "won't do" needs a reason, given on the item page.
CREATE_STATUSES = [
    (value, label) for value, label in ActionItem.Status.choices if value != "wont_do"
]
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
UNKNOWN_PERSON = (
    "We couldn't find that person: no active account matches “%(value)s”. Type their email address."
)
OWNER_HELP = "Their email address or name."


class FactorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, factor: ContributingFactor) -> str:
        return str(factor)


def _owner_can_see(owner: User | None, incident: Incident) -> bool:
    """A restricted incident is invisible to non-participants: their own item would be too."""
    if owner is None or not incident.is_restricted or owner.is_superuser:
        return True
    return Participant.objects.filter(incident=incident, user=owner).exists()


RESTRICTED_OWNER = (
    "{name} isn't a participant of this restricted incident, so they couldn't see this item. "
    "Add them to the incident first, or pick someone who is."
)


class ActionItemForm(forms.ModelForm):
    owner = PersonField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        error_messages={"no_match": UNKNOWN_PERSON},
        help_text="The person who looks after this item: their email address or name. "
        "They can hand it on later, with a reason.",
    )
    contributing_factor = FactorChoiceField(
        queryset=ContributingFactor.objects.none(),
        required=False,
        label="Contributing factor it addresses",
        empty_label="— none —",
    )
    status = forms.ChoiceField(choices=CREATE_STATUSES, initial=ActionItem.Status.OPEN)
    description = forms.CharField(
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="How you'll know it's done, and anything the owner should know.",
    )

    class Meta:
        model = ActionItem
        fields = [
            "title",
            "description",
            "owner",
            "team",
            "due_on",
            "priority",
            "kind",
            "status",
            "tracker_url",
            "contributing_factor",
        ]
        labels = {"due_on": "Due date", "tracker_url": "Tracker link"}
        help_texts = {
            "title": "What will exist or be different when this is done?",
            "team": "Leave empty to use the owner's first team.",
            "kind": "Detect sooner, mitigate faster, prevent, change a process, or share learning.",
            "tracker_url": "Link to the ticket in your tracker (http or https).",
        }
        widgets = {
            "due_on": DATE_INPUT,
            "tracker_url": forms.URLInput(attrs={"placeholder": "https://"}),
        }
        error_messages = {
            "title": {
                "max_length": "Keep the title under %(limit_value)d characters "
                "(it has %(show_value)d); put the detail in the description."
            },
        }

    def __init__(self, *args, incident: Incident, show_factors: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.incident = incident
        self.fields["team"].queryset = Team.objects.all()
        self.fields["team"].empty_label = "— the owner's first team —"
        factors = ContributingFactor.objects.filter(postmortem__incident=incident)
        # The factors are the write-up's words: not listed to someone who may not read it yet.
        self.fields["contributing_factor"].queryset = factors if show_factors else factors.none()
        self.fields["due_on"].widget.attrs["min"] = timezone.localdate().isoformat()

    def clean_due_on(self):
        due_on = self.cleaned_data.get("due_on")
        if due_on and due_on < timezone.localdate():
            raise forms.ValidationError(
                "The due date is in the past. Pick today or a later day.", code="past"
            )
        return due_on

    def clean_tracker_url(self):
        url = self.cleaned_data.get("tracker_url", "")
        if url and urlsplit(url).scheme.lower() not in ("http", "https"):
            raise forms.ValidationError("Use a web link starting with http:// or https://.")
        return url

    def clean_owner(self):
        owner = self.cleaned_data.get("owner")
        if not _owner_can_see(owner, self.incident):
            raise forms.ValidationError(RESTRICTED_OWNER.format(name=owner.name))
        return owner

    def prompts(self, names=()) -> list[quality.Prompt]:
        """Quality prompts for what was typed, valid or not (they nudge, never block)."""
        return quality.check_action_item(
            title=self["title"].value() or "",
            description=self["description"].value() or "",
            owner_id=self["owner"].value() or None,
            due_on=self["due_on"].value() or None,
            names=names,
        )


class ActionItemUpdateForm(forms.Form):
    """Change status, owner or due date. A plain form so that a refused change leaves the item
    object untouched for the page that shows the errors."""

    status = forms.ChoiceField(choices=ActionItem.Status.choices)
    owner = PersonField(
        required=False,
        error_messages={"no_match": UNKNOWN_PERSON},
        help_text="Their email address or name; leave empty for nobody.",
    )
    due_on = forms.DateField(label="Due date", required=False, widget=DATE_INPUT)
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed for won't do, for handing the item to someone else, "
        "and for moving the due date. It stays on the item's record.",
    )

    def __init__(self, *args, item: ActionItem, **kwargs):
        kwargs.setdefault(
            "initial", {"status": item.status, "owner": item.owner, "due_on": item.due_on}
        )
        super().__init__(*args, **kwargs)
        self.item = item
        # The current owner stays selectable even if their account has since been closed.
        owners = User.objects.filter(is_active=True)
        if item.owner_id:
            owners = User.objects.filter(is_active=True) | User.objects.filter(pk=item.owner_id)
        self.fields["owner"].queryset = owners

    def changed_fields(self) -> list[str]:
        data = self.cleaned_data
        changed = []
        if data.get("status", self.item.status) != self.item.status:
            changed.append("status")
        owner = data.get("owner")
        if (owner.pk if owner else None) != self.item.owner_id:
            changed.append("owner")
        if data.get("due_on") != self.item.due_on:
            changed.append("due_on")
        return changed

    def clean(self):
        data = super().clean()
        if any(name in self.errors for name in ("status", "owner", "due_on")):
            return data
        changed = self.changed_fields()
        if not changed:
            raise forms.ValidationError(
                "Nothing changed: pick a new status, owner or due date.", code="unchanged"
            )
        reason = data.get("reason", "").strip()
        data["reason"] = reason
        if not reason:
            if "status" in changed and data["status"] == ActionItem.Status.WONT_DO:
                self.add_error(
                    "reason",
                    "Say why this won't be done; the reason stays on the item's record.",
                )
            elif "owner" in changed:
                self.add_error("reason", "Say why the item is being handed on.")
            elif "due_on" in changed:
                self.add_error("reason", "Say why the due date is moving.")
        if "due_on" in changed and data.get("due_on") and data["due_on"] < timezone.localdate():
            self.add_error("due_on", "The new due date is in the past. Pick today or later.")
        if "owner" in changed and not _owner_can_see(data.get("owner"), self.item.incident):
            self.add_error("owner", RESTRICTED_OWNER.format(name=data["owner"].name))
        return data


# --- The managers' review: GET filters. Invalid values are dropped, never an error page. ------

SORT_CHOICES = [
    ("due", "Due date (soonest first)"),
    ("-due", "Due date (latest first)"),
    ("priority", "Priority (high first)"),
    ("-priority", "Priority (low first)"),
    ("age", "Age (oldest first)"),
    ("-age", "Age (newest first)"),
    ("owner", "Owner (A–Z)"),
    ("-owner", "Owner (Z–A)"),
]
DUE_WINDOWS = [
    ("", "Any time"),
    ("7", "Next 7 days"),
    ("14", "Next 14 days"),
    ("30", "Next 30 days"),
]
MY_TEAMS = "mine"
ALL_TEAMS = "all"


class ActionItemFilterForm(forms.Form):
    team = forms.ChoiceField(required=False, widget=QuickSelect)
    owner = PersonField(
        required=False,
        help_text="",
        widget=forms.TextInput(attrs={"placeholder": "Email or name; empty for anyone"}),
        error_messages={"no_match": "No one matches “%(value)s”."},
    )
    status = forms.MultipleChoiceField(
        choices=ActionItem.Status.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means open and in progress.",
    )
    overdue = forms.BooleanField(label="Overdue only", required=False)
    due_window = forms.TypedChoiceField(
        label="Due",
        choices=DUE_WINDOWS,
        coerce=int,
        empty_value=None,
        required=False,
        widget=QuickSelect,
    )
    priority = forms.TypedChoiceField(
        choices=[("", "Any priority"), *ActionItem.Priority.choices],
        coerce=int,
        empty_value=None,
        required=False,
        widget=QuickSelect,
    )
    severity = forms.TypedChoiceField(
        label="Incident severity",
        choices=[("", "Any severity")]
        + [(value, f"SEV{value}") for value, _ in Incident.Severity.choices],
        coerce=int,
        empty_value=None,
        required=False,
        widget=QuickSelect,
    )
    sort = forms.ChoiceField(
        label="Sort by", choices=SORT_CHOICES, required=False, widget=QuickSelect
    )

    def __init__(self, *args, teams, is_manager: bool, may_review: bool, **kwargs):
        """`teams`: (id, name) pairs, in the order the choice lists them."""
        super().__init__(*args, **kwargs)
        team_choices = [(MY_TEAMS, "My teams")] if is_manager else []
        team_choices += [(ALL_TEAMS, "All teams")]
        team_choices += [(str(pk), name) for pk, name in teams]
        self.fields["team"].choices = team_choices
        self.fields["team"].initial = MY_TEAMS if is_manager else ALL_TEAMS
        if not may_review:
            # Everyone else sees only their own items; there is nobody else to pick.
            del self.fields["owner"]
        for field in self.fields.values():
            if isinstance(field.widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
                field.widget.attrs["class"] = "form-check-input"
            elif isinstance(field.widget, forms.Select):
                field.widget.attrs["class"] = "form-select form-select-sm"
            else:
                field.widget.attrs["class"] = "form-control form-control-sm"

    def full_clean(self) -> None:
        super().full_clean()
        mark_invalid(self)  # a rejected owner is outlined, its message tied to it

    def ignored(self) -> list[str]:
        """Labels of filters whose values made no sense and were left out."""
        return [str(self.fields[name].label or name.capitalize()) for name in self.errors]

    def value(self, name: str, default=None):
        """The cleaned value of a filter, or the default when absent or malformed."""
        if not self.is_bound:
            return default
        self.is_valid()  # cleans once; cleaned_data then holds only the valid filters
        value = self.cleaned_data.get(name)
        return default if value in (None, "", []) else value
