"""Browser journeys: Debian's Chromium driven by Playwright against pytest-django's live server."""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import needs

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread.

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    needs(Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM}")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": DESKTOP, "locale": "en-GB"}


@pytest.fixture
def page(page):
    page.set_default_timeout(5_000)
    return page


@pytest.fixture
def links_to_live_server(settings, live_server):
    """Links in emails point at the live server, so a journey can follow them."""
    settings.SITE_URL = live_server.url
    # pytest-django swaps in the locmem backend; the journeys read django.core.mail.outbox.
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"
    return live_server.url


def pytest_terminal_summary(terminalreporter):
    """The axe-core totals for the run: zero only means something if pages were audited."""
    from tests.e2e.support import AUDIT_NOTES, AUDIT_TOTALS

    if not AUDIT_TOTALS["pages"]:
        return
    totals = AUDIT_TOTALS
    terminalreporter.write_sep("-", "axe-core accessibility audit")
    terminalreporter.write_line(
        f"pages audited: {totals['pages']}; violations (rules per page) by impact: "
        f"critical {totals['critical']}, serious {totals['serious']}, "
        f"moderate {totals['moderate']}, minor {totals['minor']}"
    )
    for rule, pages in sorted(AUDIT_NOTES.items()):
        terminalreporter.write_line(f"  {rule}: {', '.join(sorted(pages))}")
    terminalreporter.write_line(f"screenshots: {SCREENSHOTS}")
