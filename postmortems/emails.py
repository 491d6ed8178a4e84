"""Rendering and sending email. Each email is three templates in templates/emails/:
`<name>_subject.txt`, `<name>_body.txt` and `<name>_body.html`.
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from . import preferences


def render(name: str, context: dict) -> tuple[str, str, str]:
    """Subject (one line, whatever the template or the data held), text body, HTML body."""
    context = {"SITE_URL": settings.SITE_URL, "SITE_NAME": settings.SITE_NAME, **context}
    subject = render_to_string(f"emails/{name}_subject.txt", context)
    # A title with CR/LF in it must never become a second header line.
    subject = " ".join(subject.split())
    text = render_to_string(f"emails/{name}_body.txt", context)
    html = render_to_string(f"emails/{name}_body.html", context)
    return subject, text, html


def build(
    name: str,
    to: str,
    context: dict,
    *,
    headers: dict | None = None,
    attachments: Iterable[tuple[str, bytes | str, str]] = (),
) -> EmailMultiAlternatives:
    subject, text, html = render(name, context)
    message = EmailMultiAlternatives(
        subject, text, settings.DEFAULT_FROM_EMAIL, [to], headers=headers or {}
    )
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    return message


def send_invitation(invitation, url: str) -> None:
    build(
        "invitation",
        invitation.user.email,
        {"invitation": invitation, "invited_by": invitation.invited_by, "url": url},
    ).send()


def absolute_url(path: str) -> str:
    """A link that works from a mail client: no request is at hand in a Celery task."""
    return settings.SITE_URL + path


def build_notification(
    name: str,
    recipient,
    context: dict,
    *,
    preference: str,
    attachments: Iterable[tuple[str, bytes | str, str]] = (),
) -> EmailMultiAlternatives:
    """An email to one person: times in their zone, a one-click link to switch this kind of email
    off (in the footer and as List-Unsubscribe, RFC 8058), and marked as sent by a machine."""
    preferences_url = preferences.url_for(recipient, preference)
    headers = {
        "List-Unsubscribe": f"<{preferences_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",  # RFC 3834: no out-of-office replies, please
    }
    context = {"recipient": recipient, "preferences_url": preferences_url, **context}
    with timezone.override(recipient.zone):
        return build(name, recipient.email, context, headers=headers, attachments=attachments)
