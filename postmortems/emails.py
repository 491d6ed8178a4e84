"""Rendering and sending email. Each email is three templates in templates/emails/:
`<name>_subject.txt`, `<name>_body.txt` and `<name>_body.html`.
"""

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


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
