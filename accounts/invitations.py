"""Invitations: a signed, expiring, single-use link that lets a new person set a password."""

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from postmortems import emails

from .models import Invitation, User

SALT = "accounts.invitation"


def token_for(invitation: Invitation) -> str:
    return signing.dumps(invitation.pk, salt=SALT)


def invitation_url(invitation: Invitation) -> str:
    return settings.SITE_URL + reverse("accounts:invitation_accept", args=[token_for(invitation)])


class InvalidInvitation(Exception):
    """The link is forged, expired, already used, or its person is gone."""


def invitation_from_token(token: str) -> Invitation:
    try:
        pk = signing.loads(token, salt=SALT, max_age=settings.INVITATION_MAX_AGE.total_seconds())
    except signing.SignatureExpired as exc:
        raise InvalidInvitation("This invitation has expired.") from exc
    except signing.BadSignature as exc:
        raise InvalidInvitation("This invitation link is not valid.") from exc
    invitation = Invitation.objects.select_related("user").filter(pk=pk).first()
    if invitation is None:
        raise InvalidInvitation("This invitation link is not valid.")
    if invitation.is_accepted:
        raise InvalidInvitation("This invitation has already been used.")
    if invitation.invalidated_by_newer():
        raise InvalidInvitation("A newer invitation was sent; please use the link in that one.")
    return invitation


def invite(email: str, *, invited_by: User, display_name: str = "") -> tuple[User, bool]:
    """Find the person with this address, or create them inactive and email an invitation.

    Returns (user, invited). An active person already here is returned as-is, with no email.
    """
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and user.has_usable_password():
        return user, False
    with transaction.atomic():
        if user is None:
            user = User.objects.create_user(
                email,
                password=None,
                display_name=display_name,
                is_active=False,
                time_zone=invited_by.time_zone,
            )
        invitation = Invitation.objects.create(user=user, invited_by=invited_by)
        url = invitation_url(invitation)
        transaction.on_commit(lambda: emails.send_invitation(invitation, url))
    return user, True


@transaction.atomic
def accept(invitation: Invitation, password: str) -> User:
    """Set the password and activate the person. Locks the row so a link works exactly once."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.is_accepted:
        raise InvalidInvitation("This invitation has already been used.")
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    user = invitation.user
    user.set_password(password)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    return user
