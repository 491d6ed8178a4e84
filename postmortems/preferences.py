"""Signed one-click links that switch off one kind of email for one person, without signing in.

The token is the credential: it carries the person's id and the preference field, signed with a
salt of its own, so it cannot be forged, cannot be replayed as any other kind of signed value,
and a token for one person can never change another's settings.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from accounts.models import User

from .models import Delivery

SALT = "postmortems.preferences.switch-off"
# Long enough that an old email still works; RFC 8058 expects unsubscribe links to keep working.
MAX_AGE = timedelta(days=90)

# The one preference each kind of email obeys.
FIELD_FOR_KIND = {
    Delivery.Kind.ACCOUNT_REQUEST: "notify_account_requests",
    Delivery.Kind.ACCOUNT_REMINDER: "notify_account_requests",
    Delivery.Kind.MEETING_INVITE: "notify_review_meetings",
    Delivery.Kind.MEETING_REMINDER: "notify_review_meetings",
    Delivery.Kind.POSTMORTEM_OVERDUE: "notify_postmortem_overdue",
    Delivery.Kind.ACTION_DUE_SOON: "notify_action_items",
    Delivery.Kind.ACTION_OVERDUE: "notify_action_items",
    Delivery.Kind.ACTION_ESCALATION: "notify_action_items",
    Delivery.Kind.WEEKLY_DIGEST: "notify_weekly_digest",
}
FIELDS = frozenset(FIELD_FOR_KIND.values())


class InvalidLink(Exception):
    """The link was altered, has expired, or its person is gone."""


@dataclass(frozen=True)
class Switch:
    user: User
    field: str

    @property
    def label(self) -> str:
        return str(User._meta.get_field(self.field).verbose_name)

    @property
    def is_on(self) -> bool:
        return getattr(self.user, self.field)


def token_for(user: User, field: str) -> str:
    if field not in FIELDS:
        raise ValueError(f"{field} is not an email preference")
    return signing.dumps({"u": user.pk, "f": field}, salt=SALT, compress=True)


def url_for(user: User, field: str) -> str:
    """The absolute link for an email's footer and its List-Unsubscribe header."""
    path = reverse("postmortems:email_preferences", args=[token_for(user, field)])
    return settings.SITE_URL + path


def switch_from_token(token: str) -> Switch:
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE.total_seconds())
    except signing.SignatureExpired as exc:
        raise InvalidLink("This link has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidLink("This link is not valid. It may have been cut short or changed.") from exc
    field = data.get("f") if isinstance(data, dict) else None
    if field not in FIELDS:
        raise InvalidLink("This link is not valid.")
    user = User.objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None:
        raise InvalidLink("This link belongs to an account that no longer exists.")
    return Switch(user=user, field=field)


def switch_off(switch: Switch) -> bool:
    """Turn the preference off. Returns whether anything changed (a second click is harmless)."""
    changed = User.objects.filter(pk=switch.user.pk, **{switch.field: True}).update(
        **{switch.field: False}
    )
    setattr(switch.user, switch.field, False)
    return bool(changed)
