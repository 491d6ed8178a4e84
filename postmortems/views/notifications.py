from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from postmortems import digests, fragments, preferences
from postmortems.kept_pages import kept_page


@require_GET
@kept_page
def digest_preview(request: HttpRequest) -> HttpResponse:
    """The signed-in person's weekly digest as it stands now ("view in browser")."""
    digest = digests.compile_for(request.user, timezone.now())
    review_url = reverse("postmortems:action_item_review")
    context = {
        "digest": digest,
        # The sections, as the email has them (with relative links here), kept while unchanged.
        "sections_html": (
            "" if digest.is_empty else fragments.digest_sections(digest, review_url=review_url)
        ),
    }
    return render(request, "postmortems/digest_preview.html", context)


# The signed token is the credential, not a session: it works signed out, and mail clients send
# the one-click POST of RFC 8058 (List-Unsubscribe-Post) with no CSRF token. GET never changes
# anything, so link scanners that open every URL in a mail switch nothing off.
@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def email_preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        switch = preferences.switch_from_token(token)
    except preferences.InvalidLink as exc:
        return render(
            request, "postmortems/email_preferences_invalid.html", {"reason": str(exc)}, status=400
        )
    if request.method == "POST":
        changed = preferences.switch_off(switch)
        return render(
            request,
            "postmortems/email_preferences_done.html",
            {"switch": switch, "changed": changed},
        )
    return render(request, "postmortems/email_preferences.html", {"switch": switch})
