"""What every journey needs: sign in, take screenshots at two widths, audit with axe-core."""

from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS

BLOCKING_IMPACTS = {"serious", "critical"}
_axe = Axe()
AUDIT_TOTALS: dict[str, int] = {"pages": 0, "serious": 0, "critical": 0, "moderate": 0, "minor": 0}


def sign_in(page, live_server, email: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in/" not in url)


def violations(page) -> list[dict]:
    """axe-core's violations on the current page, each with its impact."""
    results = _axe.run(page)
    return results.response["violations"]


def audit(page, name: str) -> None:
    """Screenshot the page at desktop and phone width and fail on serious/critical violations."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found = violations(page)
    AUDIT_TOTALS["pages"] += 1
    for violation in found:
        AUDIT_TOTALS[violation["impact"] or "minor"] += 1
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.set_viewport_size(DESKTOP)
    blocking = [v for v in found if v["impact"] in BLOCKING_IMPACTS]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in blocking
    ]
    assert not blocking, f"axe-core on {name}: " + "; ".join(details)
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at phone width"
