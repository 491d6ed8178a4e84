import functools

from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

# The links every page's navigation carries, by the names base.html uses.
NAV_LINKS = {
    "home": "home",
    "incidents": "postmortems:incident_list",
    "action_items": "postmortems:action_item_review",
    "digest": "postmortems:digest_preview",
    "profile": "accounts:profile",
    "password_change": "accounts:password_change",
    "invite": "accounts:invite",
    "admin": "admin:index",
    "logout": "accounts:logout",
}


@functools.lru_cache(maxsize=8)
def _nav(urlconf: str | None, prefix: str) -> dict[str, str]:
    # The same on every request of a process: reversing nine names on each page was about a
    # twentieth of the incident list's time.
    links = {}
    for name, view in NAV_LINKS.items():
        try:
            links[name] = reverse(view)
        except NoReverseMatch:  # a URLconf without that part (a test's, the benchmark's)
            links[name] = ""
    return links


def site(request) -> dict:
    return {"SITE_NAME": settings.SITE_NAME, "NAV": _nav(get_urlconf(), get_script_prefix())}
