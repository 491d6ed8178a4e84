"""Supply chain: what runs is what the lock says, and Django carries its 2026 security fixes.

The vulnerability audit itself (pip-audit against the locked versions) needs the network, so it
runs in .ci/run, not here: it fails CI on a known vulnerability and says so plainly when no
vulnerability service can be reached.
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import django
from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(settings.BASE_DIR)
# Django 5.2.11 fixed three SQL injections (February 2026); nothing older may run.
DJANGO_FLOOR = Version("5.2.11")


def locked() -> dict[str, set[str]]:
    """Every package in uv.lock with its locked version(s) (one per Python marker, at most)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        if "version" in package:
            versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def test_the_installed_django_has_the_2026_sql_injection_fixes_and_is_the_locked_one():
    installed = Version(django.get_version())

    assert installed >= DJANGO_FLOOR
    assert installed.major == 5 and installed.minor == 2, "the LTS line this project is on"
    assert locked()["django"] == {str(installed)}


def test_the_project_cannot_be_resolved_to_a_django_without_those_fixes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [django_requirement] = [
        Requirement(line)
        for line in project["dependencies"]
        if canonicalize_name(Requirement(line).name) == "django"
    ]

    assert not django_requirement.specifier.contains("5.2.10")
    assert django_requirement.specifier.contains(str(DJANGO_FLOOR))


def test_every_installed_package_of_the_lock_is_at_its_locked_version(trust_figures):
    # The audit in CI reads the lock; this proves the lock is what runs.
    mismatched, checked = {}, 0
    for name, versions in locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # locked for another platform or Python (markers), not installed here
        checked += 1
        if installed not in versions:
            mismatched[name] = (installed, sorted(versions))

    trust_figures(
        "supply chain",
        django=django.get_version(),
        locked_packages=len(locked()),
        installed_checked=checked,
        not_as_locked=len(mismatched),
    )
    assert mismatched == {}
    assert checked >= 40, "the lock and the environment hardly overlap: wrong environment?"


def test_ci_runs_the_vulnerability_audit_on_the_lock():
    script = (ROOT / ".ci" / "run").read_text()

    assert re.search(r"uv export --frozen .*--no-hashes", script)
    assert "pip-audit" in script
