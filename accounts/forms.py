import zoneinfo

from django import forms

from .models import User


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        help_text="Every time in the app is shown in this zone, and entered in it.",
    )

    class Meta:
        model = User
        fields = [
            "display_name",
            "time_zone",
            "notify_account_requests",
            "notify_review_meetings",
            "notify_postmortem_overdue",
            "notify_action_items",
            "notify_weekly_digest",
        ]
        help_texts = {"display_name": "How colleagues see you on timelines and reviews."}


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    display_name = forms.CharField(max_length=150, required=False, label="Name (optional)")
