"""Supply-chain audit for CI: pip-audit on the locked requirements, and Django's newest 5.2 patch.

Fails on any known vulnerability. Where no vulnerability service answers (these machines reach
only package registries), it says so plainly and does not fail: unreachable is not vulnerable.
"""

import json
import pathlib
import subprocess
import sys
import urllib.request

requirements = sys.argv[1]
tool = [".tools/bin/uvx", "--quiet", "pip-audit==2.10.1"]
for service in ("osv", "pypi"):
    report = pathlib.Path(f".run/audit-{service}.json")
    report.unlink(missing_ok=True)
    try:
        run = subprocess.run(
            [
                *tool,
                "-r",
                requirements,
                "--no-deps",
                "--disable-pip",
                "--progress-spinner",
                "off",
                "--vulnerability-service",
                service,
                "--format",
                "json",
                "--output",
                str(report),
                "--cache-dir",
                ".run/pip-audit-cache",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        why = (run.stderr.strip().splitlines() or ["no output"])[-1][:300]
    except subprocess.TimeoutExpired:
        why = "timed out"
    if not report.exists() or not report.read_text().strip():
        print(f"audit: {service}: could not audit ({why})")
        continue
    deps = json.loads(report.read_text())["dependencies"]
    audited = [d for d in deps if "skip_reason" not in d]
    found = [
        (d["name"], d["version"], v["id"], ", ".join(v.get("fix_versions") or []) or "none")
        for d in audited
        for v in d.get("vulns", [])
    ]
    for name, version, vuln, fixes in found:
        print(f"audit: VULNERABLE {name} {version}: {vuln} (fixed in: {fixes})")
    if found:
        sys.exit(f"audit: FAILED: {len(found)} known vulnerabilities in the locked dependencies")
    if audited:
        print(
            f"audit: {service}: {len(audited)} of {len(deps)} locked packages audited, "
            "0 known vulnerabilities"
        )
        for d in deps:
            if "skip_reason" in d:
                print(f"audit: not audited: {d['skip_reason']}")
        break
    reason = deps[0]["skip_reason"] if deps else "empty requirements"
    print(f"audit: {service}: answered for none of {len(deps)} packages ({reason})")
else:
    print(
        "audit: NOT PERFORMED: no vulnerability service (OSV, PyPI JSON API) could be "
        "reached from this machine. CI does not fail for that; nothing was checked."
    )

# Django's newest 5.2 patch, from the registry (a warning only: a new upstream release must
# not break the build by itself, but security fixes come as patch releases).
locked = next(
    line.split("==")[1].split()[0]
    for line in open(requirements)
    if line.lower().startswith("django==")
)
try:
    with urllib.request.urlopen("https://pypi.org/pypi/django/json", timeout=20) as answer:
        releases = json.load(answer)["releases"]
    patches = [
        v
        for v, files in releases.items()
        if v.startswith("5.2.") and v[4:].isdigit() and not all(f.get("yanked") for f in files)
    ]
    newest = max(patches, key=lambda v: int(v[4:]))
    if int(locked[4:]) < int(newest[4:]):
        print(
            f"audit: WARNING: Django {locked} is locked, {newest} is out: `uv lock "
            "--upgrade-package django`"
        )
    else:
        print(f"audit: Django {locked} is the newest 5.2 release")
except Exception as exc:  # noqa: BLE001
    print(f"audit: could not ask the registry for Django's newest release ({exc!r})")
