import os
from collections import defaultdict

import pytest
from django.test.signals import template_rendered

from postmortems.celery import app as celery_app

# Tests that need PostgreSQL, Redis or Chromium skip on a bare laptop, but CI sets this so that a
# missing service fails the run instead of silently skipping what it was meant to prove.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def needs(condition: bool, reason: str):
    """Skip when `condition` is false, unless CI requires the service: then fail."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"CI requires this, but {reason}")
    pytest.skip(reason)


class TemplateRenders:
    """Counts the renders of one template while in use (`with TemplateRenders(name) as r:`);
    Django's test runner reports each render."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def __call__(self, sender, template, context, **kwargs) -> None:
        if template.name == self.name:
            self.count += 1

    def __enter__(self):
        template_rendered.connect(self)
        return self

    def __exit__(self, *exc) -> None:
        template_rendered.disconnect(self)


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SITE_URL = "http://testserver"


@pytest.fixture(autouse=True)
def _nothing_kept():
    """Every test starts with no kept HTML: a page kept by one test never serves another."""
    from postmortems import fragments

    fragments.forget_all()


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    """Tasks run in-process by default; the worker tests start a real worker instead."""
    previous = {
        "task_always_eager": celery_app.conf.task_always_eager,
        "task_eager_propagates": celery_app.conf.task_eager_propagates,
    }
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    celery_app.conf.update(previous)


# --- Figures: tests that measure something record it; every run prints them at the end --------

FIGURES: dict[str, dict[str, int]] = defaultdict(dict)


@pytest.fixture
def trust_figures():
    """Record figures for the run's summary: trust_figures("part", name=value, ...)."""

    def record(part: str, *, echo: bool = True, **numbers: int) -> None:
        FIGURES[part].update(numbers)
        if echo:
            print(f"\n[figures] {part}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))

    return record


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("figures (trust suite, crash test)")
    for part, numbers in FIGURES.items():
        figures = ", ".join(f"{name}: {value}" for name, value in numbers.items())
        terminalreporter.write_line(f"{part}: {figures}")
