"""What every journey needs: sign in, take screenshots at two widths, audit with axe-core."""

import re
import weakref
from datetime import datetime, timedelta

from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from django.utils import timezone

from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS

BLOCKING_IMPACTS = {"serious", "critical"}
_axe = Axe()
AUDIT_TOTALS: dict[str, int] = {"pages": 0, "serious": 0, "critical": 0, "moderate": 0, "minor": 0}
# Non-blocking findings (moderate/minor), by rule and page, for the session's summary.
AUDIT_NOTES: dict[str, set[str]] = {}
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
# Pages opened with JavaScript off: axe-core cannot run in them (its promise never settles).
_WITHOUT_JAVASCRIPT: "weakref.WeakSet" = weakref.WeakSet()


def sign_in(page, live_server, email: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in/" not in url)


def settle(page) -> None:
    """Let the page come to rest before it is judged: no pointer hovering a button, no focus ring
    on the control just clicked, and every CSS transition finished. Bootstrap fades a button's
    colours over 0.15 s, and axe-core reading the colours mid-fade reports a contrast failure
    that no person would see."""
    page.mouse.move(0, 0)
    page.evaluate(
        """async () => {
            if (document.activeElement && document.activeElement !== document.body) {
                document.activeElement.blur();
            }
            await Promise.all(document.getAnimations().map((a) => a.finished.catch(() => null)));
        }"""
    )


def violations(page, within: str | None = None) -> list[dict]:
    """axe-core's violations on the current page (or the part matching `within`), each with its
    impact, once the page has settled."""
    if page in _WITHOUT_JAVASCRIPT:
        return _violations_of_copy(page)
    settle(page)
    context = {"include": [[within]]} if within else None
    return _axe.run(page, context=context).response["violations"]


def serious_violations(page, within: str | None = None) -> list[str]:
    """The serious and critical violations, one readable line each."""
    return [
        f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:3]}"
        for v in violations(page, within)
        if v["impact"] in BLOCKING_IMPACTS
    ]


def _violations_of_copy(page) -> list[dict]:
    """Audit exactly what a page without JavaScript shows: its DOM, served at the same URL to a
    page where axe-core can run and the site's own scripts are kept from running."""
    html = page.content()
    address = page.url.split("#")[0]
    context = page.context.browser.new_context(viewport=page.viewport_size or DESKTOP)
    try:
        copy = context.new_page()
        copy.route("**/*.js", lambda route: route.abort())
        copy.route(
            lambda url: url == address,
            lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"),
        )
        copy.goto(address)
        assert copy.title() == page.title(), "the copy to audit is not the page"
        return _axe.run(copy).response["violations"]
    finally:
        context.close()


def audit(page, name: str) -> None:
    """Screenshot the page at desktop and phone width and fail on serious/critical violations.

    The page is left at the width it had before, so a phone journey stays on a phone.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found = violations(page)
    AUDIT_TOTALS["pages"] += 1
    for violation in found:
        AUDIT_TOTALS[violation["impact"] or "minor"] += 1
        if violation["impact"] not in BLOCKING_IMPACTS:
            AUDIT_NOTES.setdefault(f"{violation['id']} ({violation['impact']})", set()).add(name)
    before = page.viewport_size or DESKTOP
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.set_viewport_size(before)
    blocking = [v for v in found if v["impact"] in BLOCKING_IMPACTS]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in blocking
    ]
    assert not blocking, f"axe-core on {name}: " + "; ".join(details)
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at phone width"


def open_page(new_context, **context_args):
    """A page in a fresh browser context (its own cookies: another person, or no JavaScript)."""
    page = new_context(**context_args).new_page()
    page.set_default_timeout(5_000)
    if context_args.get("java_script_enabled") is False:
        _WITHOUT_JAVASCRIPT.add(page)
    return page


def a_while_ago(zone, **delta) -> datetime:
    """A whole minute `delta` ago, moved back to the evening before if it falls in the small
    hours in `zone`: clocks change at night, and a typed time that happens twice (or never)
    there is rightly refused. Leaves a couple of hours' room for later moments in a journey."""
    moment = (timezone.now() - timedelta(**delta)).replace(second=0, microsecond=0)
    local = moment.astimezone(zone)
    if local.hour < 5:
        moment -= timedelta(hours=local.hour + 4)
    return moment


def local_input(moment: datetime, zone) -> str:
    """What a person in `zone` types into a datetime-local field for this moment."""
    return moment.astimezone(zone).strftime(DATETIME_LOCAL)


def sent_to(address: str) -> list:
    """The emails sent to one address so far (locmem backend; the live server is in-process)."""
    return [message for message in mail.outbox if address in message.to]


def link_in(message, pattern: str) -> str:
    """The first absolute link in an email's text body whose path matches `pattern`."""
    match = re.search(rf"https?://\S*{pattern}\S*", message.body)
    assert match, f"no link matching {pattern!r} in: {message.body}"
    return match.group(0)


def csrf_token(page) -> str:
    """The CSRF token of the page's first form, for a request the page itself would not send."""
    return page.locator("input[name=csrfmiddlewaretoken]").first.input_value()


def no_sideways_scroll(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"
