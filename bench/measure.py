"""The benchmark's measurements. bench/run.sh runs each step as its own process:

    ensure-db   create, migrate and seed a database once; reuse it while sizes and schema match
    sessions    sign the benchmark people in (sessions made in code, no login requests)
    wrk         load each page through gunicorn with wrk, and the bare view (the ceiling)
    queries     SQL queries per page with Django's test client; EXPLAIN ANALYZE and a profile
    digests     the weekly digest run for everyone due, into a local SMTP sink
    reminders   the reminder scan
    report      bench/results.json, bench/out/summary.md and the figures in docs/performance.md

Every step reads the settings from the environment, as the app does (run.sh sets them).
"""

import argparse
import cProfile
import hashlib
import http.client
import io
import json
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable
sys.path.insert(0, str(ROOT))

# The targets (issue 7).
P95_MS = 50.0
CEILING_SHARE = 0.10
MAX_QUERIES = 12
DEEP_PAGE_FACTOR = 1.5
DIGEST_SECONDS = 30.0
DIGEST_MB = 300.0
REMINDER_SECONDS = 5.0
BIG_TABLES = (
    "postmortems_incident",
    "postmortems_timelineentry",
    "postmortems_participant",
    "postmortems_actionitem",
    "postmortems_incident_services",
    "postmortems_postmortem",
)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postmortems.settings")
    import django

    django.setup()


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path):
    return json.loads(path.read_text())


def database_url(name: str) -> str:
    base = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    return f"{base}/{name}"


# --- The pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    label: str
    path: str
    user: str  # "participant" or "manager" (fixtures.json)
    server: str = "app"  # or "rendered" (the app keeping no page), or "ceiling"
    writes_per_second: float = 0  # committed while wrk runs, each one moving the change counter


DIGEST_PROCESSES = 2  # the compose file's worker: --concurrency 2
DEEP_ROWS = 49_975  # where page 2,000 of 25 rows began before keyset pagination


def deep_cursor() -> str:
    """The incident list's keyset cursor about 50,000 rows down (or halfway down a small
    database, so that rows follow it there too and both scales run the same queries), in the
    format postmortems/pagination.py writes: created_at (UTC),pk."""
    import psycopg

    url = os.environ.get("DATABASE_URL") or database_url("postmortems_bench")
    with psycopg.connect(url) as conn:
        created_at, pk = conn.execute(
            "SELECT created_at, id FROM postmortems_incident ORDER BY created_at DESC, id DESC "
            "OFFSET (SELECT LEAST(%s, COUNT(*) / 2) FROM postmortems_incident) "
            "LIMIT 1",
            [DEEP_ROWS],
        ).fetchone()
    return f"{created_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')},{pk}"


def pages(fx: dict) -> list[Page]:
    b, term, service = fx["bench_incident_id"], fx["search_term"], fx["service"]
    return [
        Page("ceiling", "Bare Django view (ceiling)", "/", "participant", "ceiling"),
        Page("incident_list", "Incident list, first page", "/incidents/", "participant"),
        Page(
            "incident_list_filtered",
            "Incident list, filtered",
            f"/incidents/?status=resolved&severity=2&service={service}",
            "participant",
        ),
        Page(
            "incident_list_deep",
            "Incident list, ~50,000 rows down (keyset cursor)",
            f"/incidents/?after={deep_cursor()}",
            "participant",
        ),
        Page("search", f"Search “{term}”", f"/incidents/?q={term}", "participant"),
        Page(
            "incident_detail",
            f"Incident page, {fx['bench_incident_shared_entries']}-entry timeline",
            f"/incidents/{b}/",
            "participant",
        ),
        Page("my_account", "My account", f"/incidents/{b}/my-account/", "participant"),
        Page(
            "action_item_review",
            "Action-item review, my teams, filtered",
            "/action-items/?team=mine&status=open&status=in_progress&sort=priority",
            "manager",
        ),
        Page("digest_preview", "Digest preview", "/digest/", "manager"),
    ]


def rendered(page: Page) -> Page:
    """The page from the server that keeps no page (KEPT_PAGES_MB=0): what the first view after
    a change costs, every time."""
    return replace(
        page, name=f"{page.name}_rendered", label=f"{page.label}, rendered", server="rendered"
    )


# The two most expensive pages are also measured while something is written every second: each
# write moves the change counter, so every worker renders the page again after it.
CHURN_PAGES = ("incident_detail", "action_item_review")
CHURN_WRITES_PER_SECOND = 1.0


def churned(page: Page) -> Page:
    return replace(
        page,
        name=f"{page.name}_churn",
        label=f"{page.label}, a write committed every second",
        writes_per_second=CHURN_WRITES_PER_SECOND,
    )


def plan_with_rendered(fx: dict) -> list[Page]:
    """Each page as served (a repeated view comes from memory), then rendered every time; the
    CHURN_PAGES also with writes going on."""
    plan = []
    for page in pages(fx):
        plan.append(page)
        if page.server == "app":
            if page.name in CHURN_PAGES:
                plan.append(churned(page))
            plan.append(rendered(page))
    return plan


class Writer:
    """Commits `per_second` writes a second on its own connection while in use: a no-op update
    of one team's name, which changes nothing a page shows but moves the change counter."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        url = os.environ.get("DATABASE_URL") or database_url("postmortems_bench")
        with psycopg.connect(url, autocommit=True) as conn:
            team = conn.execute("SELECT min(id) FROM accounts_team").fetchone()[0]
            while not self._stop.wait(1 / self.per_second):
                conn.execute("UPDATE accounts_team SET name = name WHERE id = %s", [team])
                self.writes += 1

    def __enter__(self) -> "Writer":
        if self.per_second:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.per_second:
            self._thread.join()


# --- ensure-db ---------------------------------------------------------------------------------


def run(cmd: list[str], env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, **kwargs)


def cmd_ensure_db(args) -> None:
    """Create the database if missing, migrate, and seed unless it already holds this seed."""
    import psycopg

    name = args.db
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            print(f"Creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
    try:
        marker = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        marker = None
    env = {"DATABASE_URL": database_url(name)}
    applied_before = applied_migrations(name)
    run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env)
    migrated = applied_migrations(name) != applied_before
    # The seeder's own source is part of the request: change the generator, get a fresh seed.
    seeder = ROOT / "postmortems" / "management" / "commands" / "seed_scale.py"
    wanted = {
        **json.loads(args.sizes),
        "seeder": hashlib.sha256(seeder.read_bytes()).hexdigest()[:12],
    }
    check = run(
        [PYTHON, __file__, "schema-ok"], env=env, capture_output=True, text=True, check=False
    )
    reasons = []
    if check.returncode != 0:
        reasons.append("the tables do not match the models:\n" + check.stdout)
    if marker is None:
        reasons.append("it has not been seeded (or the seed did not finish)")
    else:
        if marker.get("request") != wanted:
            reasons.append(f"it was seeded with {marker.get('request')}, not {wanted}")
        anchor = datetime.fromisoformat(marker["fixtures"]["anchor"]).date()
        if (datetime.now(UTC).date() - anchor).days > 6:
            reasons.append(f"its data is relative to {anchor}, more than six days ago")
    if reasons:
        print(f"Seeding {name}: " + "; ".join(reasons))
        if check.returncode != 0:
            # A model changed under a migration that was rewritten in place: start afresh.
            with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env)
        flags = []
        for key, value in json.loads(args.sizes).items():
            flags += [f"--{key.replace('_', '-')}", str(value)]
        run(
            [PYTHON, "manage.py", "seed_scale", "--reset", "--fixtures", args.fixtures, *flags],
            env=env,
        )
        fixtures = read_json(Path(args.fixtures))
        marker = {"request": wanted, "fixtures": fixtures}
        with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
            comment = json.dumps(marker).replace("'", "''")
            conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
    else:
        print(f"Reusing {name}, seeded {marker['fixtures']['anchor']} with {wanted}")
        write_json(Path(args.fixtures), marker["fixtures"])
        if migrated:
            # A migration that rewrote rows leaves their old versions, still in the indexes,
            # until autovacuum comes (45,000 rewritten of 300,000 is below its threshold): the
            # pages would be measured reading them. A freshly seeded database is vacuumed.
            print(f"Vacuuming {name}: a migration rewrote rows of the data it holds")
            with psycopg.connect(database_url(name), autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE)")


def applied_migrations(name: str) -> int:
    """How many migrations the database has applied (0 before the first)."""
    import psycopg

    with psycopg.connect(database_url(name)) as conn:
        exists = conn.execute("SELECT to_regclass('django_migrations')").fetchone()[0]
        if exists is None:
            return 0
        return conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0]


def cmd_schema_ok(args) -> None:
    """Exit 1 when a model has a column its table lacks (migrations stale or rewritten)."""
    setup_django()
    from django.apps import apps
    from django.db import connection

    problems = []
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for model in apps.get_models(include_auto_created=True):
            table = model._meta.db_table
            if table not in tables:
                problems.append(f"missing table {table}")
                continue
            columns = {
                c.name for c in connection.introspection.get_table_description(cursor, table)
            }
            wanted = {f.column for f in model._meta.concrete_fields}
            if wanted - columns:
                problems.append(f"{table}: missing {sorted(wanted - columns)}")
    print("\n".join(problems))
    sys.exit(1 if problems else 0)


# --- sessions ----------------------------------------------------------------------------------


def cmd_sessions(args) -> None:
    """A signed-in session per benchmark person, as the sign-in view would leave it."""
    setup_django()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User

    fx = read_json(OUT / "fixtures.json")
    keys = {}
    for role in ("participant", "manager"):
        user = User.objects.get(pk=fx[f"{role}_id"])
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys[role] = session.session_key
    write_json(OUT / "sessions.json", keys)


# --- wrk ---------------------------------------------------------------------------------------


def get(port: int, path: str, cookie: str = "") -> tuple[int, int, float]:
    """One request; (status, body bytes, seconds). Redirects are not followed."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"} if cookie else {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, len(body), time.perf_counter() - started


def drain(port: int, path: str, cookie: str) -> None:
    """Wait until the server has finished the requests wrk left behind (gunicorn's sync workers
    finish a request whose client has gone): two quick answers in a row mean both are free."""
    quick = 0
    deadline = time.monotonic() + 300
    while quick < 2 and time.monotonic() < deadline:
        _, _, seconds = get(port, path, cookie)
        quick = quick + 1 if seconds < 0.25 else 0


def cpu_seconds(master_pid: int) -> float:
    """User + system CPU of a gunicorn master's workers (its children), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wrk(port: int, path: str, cookie: str, seconds: int) -> tuple[dict, str]:
    cmd = [
        "wrk",
        "-t1",
        "-c8",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "60s",
        "-s",
        str(ROOT / "bench" / "wrk" / "page.lua"),
        f"http://127.0.0.1:{port}{path}",
    ]
    done = subprocess.run(
        cmd, env={**os.environ, "BENCH_COOKIE": cookie}, capture_output=True, text=True, check=True
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON ")), done.stdout


def wait_for_quiet(limit: float, seconds: int) -> float:
    """The machine is shared: wait (up to `seconds`) for the 1-minute load average to drop."""
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def cmd_wrk(args) -> None:
    fx = read_json(OUT / "fixtures.json")
    cookies = read_json(OUT / "sessions.json")
    ports = {"app": args.app_port, "rendered": args.render_port, "ceiling": args.ceiling_port}
    masters = {"app": args.app_pid, "rendered": args.render_pid, "ceiling": args.ceiling_pid}
    idle_paths = {
        "app": ("/healthz", ""),
        "rendered": ("/healthz", ""),
        "ceiling": ("/", cookies["participant"]),
    }
    plan = plan_with_rendered(fx)
    # The ceiling first and last: the machine is shared, so its drift is part of the figures.
    plan = [
        *plan,
        Page("ceiling_end", "Bare Django view (ceiling), again", "/", "participant", "ceiling"),
    ]
    if args.quiet_wait:
        print(f"  waiting up to {args.quiet_wait} s for the load average to fall below 1 ...")
    results = {
        "load_average_start": [wait_for_quiet(1.0, args.quiet_wait), *os.getloadavg()[1:]],
        "pages": {},
    }
    (OUT / "wrk").mkdir(parents=True, exist_ok=True)
    for page in plan:
        port, cookie = ports[page.server], cookies[page.user]
        status, size, _ = get(port, page.path, cookie)
        if status != 200:
            raise SystemExit(f"{page.name}: GET {page.path} answered {status}, not 200")
        for _ in range(3):  # warm both workers: templates, connections, caches
            get(port, page.path, cookie)
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds(masters[page.server]) if masters[page.server] else None
        with Writer(page.writes_per_second) as writer:
            figures, raw = wrk(port, page.path, cookie, args.duration)
        drain(port, *idle_paths[page.server])
        cpu_drained = cpu_seconds(masters[page.server]) if masters[page.server] else None
        (OUT / "wrk" / f"{page.name}.txt").write_text(raw)
        seconds = figures["duration_us"] / 1e6
        figures.update(
            {
                "page": asdict(page),
                "response_bytes": size,
                "load_average": load,
                "writes_during": writer.writes,
                "rps": round(figures["requests"] / seconds, 1),
                "p50_ms": figures["p50_us"] / 1000,
                "p95_ms": figures["p95_us"] / 1000,
                "p99_ms": figures["p99_us"] / 1000,
                "errors": sum(
                    figures[k]
                    for k in (
                        "errors_connect",
                        "errors_read",
                        "errors_write",
                        "errors_status",
                        "errors_timeout",
                    )
                ),
            }
        )
        if cpu_before is not None and figures["requests"]:
            # CPU per request in the web workers (PostgreSQL's own CPU is not in it), which the
            # other tenants of a shared machine disturb far less than latency. When wrk stops,
            # up to 8 requests are still queued; the workers finish them during the drain, so
            # they are counted (the drain's own two or three requests are cheap).
            served = figures["requests"] + 8
            figures["worker_cpu_ms_per_request"] = round(
                (cpu_drained - cpu_before) * 1000 / served, 1
            )
        results["pages"][page.name] = figures
        print(
            f"  {page.label:<45} {figures['rps']:>8.1f} req/s  p50 {figures['p50_ms']:7.1f} ms"
            f"  p95 {figures['p95_ms']:7.1f} ms  p99 {figures['p99_ms']:7.1f} ms"
            f"  errors {figures['errors']}  not-200 {figures['not_200']}"
            f"  cpu/req {figures.get('worker_cpu_ms_per_request', '?')} ms  load {load:.1f}"
        )
    results["load_average_end"] = os.getloadavg()
    write_json(OUT / "wrk.json", results)


# --- queries, EXPLAIN ANALYZE, profiles --------------------------------------------------------


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def seq_scans(plan: str) -> list[str]:
    return sorted({m for m in re.findall(r"Seq Scan on (\w+)", plan) if m in BIG_TABLES})


def cmd_queries(args) -> None:
    """Queries per request for each page, signed in as the same people as under load."""
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from accounts.models import User
    from postmortems import kept_pages

    fx = read_json(Path(args.fixtures))
    evidence = args.label == "big"
    results = {}
    for folder in ("explain", "profile"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    for page in pages(fx):
        client = Client(SERVER_NAME="127.0.0.1")
        client.force_login(
            User.objects.get(pk=fx[f"{page.user}_id"]),
            backend="django.contrib.auth.backends.ModelBackend",
        )
        urlconf = "bench.ceiling" if page.server == "ceiling" else "postmortems.urls"
        with override_settings(ROOT_URLCONF=urlconf):
            client.get(page.path)  # warm: templates, content types, connection
            # Rendered, as the first view after a change is: the page's whole cost.
            kept_pages.PAGES.clear()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(page.path)
                wall_ms = (time.perf_counter() - started) * 1000
            # Copied now: the next request empties the connection's query log.
            captured = list(captured.captured_queries)
            with CaptureQueriesContext(connection) as again:
                client.get(page.path)  # served from memory
            kept_queries = len(again.captured_queries)
            profile_text = ""
            if evidence:
                kept_pages.PAGES.clear()
                profiler = cProfile.Profile()
                profiler.enable()
                client.get(page.path)
                profiler.disable()
                stream = io.StringIO()
                pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(35)
                profile_text = stream.getvalue()
        queries = [{"ms": round(float(q["time"]) * 1000, 2), "sql": q["sql"]} for q in captured]
        record = {
            "page": asdict(page),
            "status": response.status_code,
            "queries": len(queries),
            "queries_when_kept": kept_queries,
            "sql_ms": round(sum(q["ms"] for q in queries), 1),
            "wall_ms": round(wall_ms, 1),
            "slowest": sorted(queries, key=lambda q: -q["ms"])[:3],
        }
        if evidence:
            plans, scans = [], set()
            for q in record["slowest"]:
                if q["sql"].lstrip().upper().startswith("SELECT"):
                    plan = explain(q["sql"])
                    scans.update(seq_scans(plan))
                    plans.append(f"-- {q['ms']} ms in the request\n{q['sql']}\n\n{plan}\n")
            if page.name == "search":
                # Every query of the search page, not only the slowest: none may scan a big table.
                for q in queries:
                    if q["sql"].lstrip().upper().startswith("SELECT"):
                        scans.update(seq_scans(explain(q["sql"])))
            record["seq_scans"] = sorted(scans)
            (OUT / "explain" / f"{page.name}.txt").write_text("\n\n".join(plans))
            (OUT / "profile" / f"{page.name}.txt").write_text(profile_text)
        results[page.name] = record
        print(
            f"  {page.label:<45} {response.status_code}  {len(queries):>3} queries"
            f" ({kept_queries} when kept)"
            f"  {record['sql_ms']:8.1f} ms SQL  {record['wall_ms']:8.1f} ms in-process"
        )
    write_json(OUT / f"queries-{args.label}.json", results)


# --- digests and reminders ---------------------------------------------------------------------


class QueryCounter:
    """Counts queries without keeping them (keeping 40,000 would skew the memory figure)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def digest_moment() -> datetime:
    """Wednesday 12:00 UTC of this week: Monday 09:00 has passed in every zone, and it is still
    the same week everywhere, so every digest of the week is due."""
    today = datetime.now(UTC).date()
    wednesday = today - timedelta(days=today.weekday()) + timedelta(days=2)
    return datetime(wednesday.year, wednesday.month, wednesday.day, 12, tzinfo=UTC)


def _send_batch(job: tuple) -> dict:
    """One batch, as a worker process runs digests.send_many: its outcomes, queries and the
    process's peak memory so far."""
    from django.db import connection

    from postmortems import digests

    period, recipient_ids, now = job
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        outcomes = digests.send_many(period, recipient_ids, now=now)
    return {
        "recipients": len(recipient_ids),
        "outcomes": {str(outcome): number for outcome, number in outcomes.items()},
        "queries": counter.count,
        "pid": os.getpid(),
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _run_digests(now: datetime, processes: int) -> dict:
    """Everything due, from an empty ledger: the scan, then its batches on `processes` worker
    processes (forked, like Celery's prefork pool)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from django.db import connection, connections

    from postmortems import digests
    from postmortems.models import Delivery

    # Each run starts with nothing sent this week, or the ledger would (rightly) send nothing.
    Delivery.objects.filter(kind=Delivery.Kind.WEEKLY_DIGEST).delete()
    counter = QueryCounter()
    jobs: list[tuple] = []
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        recipients = digests.scan(
            now, dispatch_batch=lambda period, ids: jobs.append((period, ids, now))
        )
    if processes == 1:
        done = [_send_batch(job) for job in jobs]
    else:
        connections.close_all()  # each process opens its own
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
            done = list(pool.map(_send_batch, jobs))
    wall = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for batch in done:
        for outcome, number in batch["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + number
    per_digest = [batch["queries"] / max(batch["recipients"], 1) for batch in done]
    peaks = {batch["pid"]: batch["peak_kb"] for batch in done}  # the last report is the peak
    peaks[os.getpid()] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "recipients": recipients,
        "outcomes": outcomes,
        "wall_s": round(wall, 2),
        "queries": counter.count + sum(batch["queries"] for batch in done),
        # Per digest, averaged over each batch of digests.BATCH_SIZE recipients.
        "queries_per_digest_min": round(min(per_digest, default=0), 2),
        "queries_per_digest_max": round(max(per_digest, default=0), 2),
        "queries_per_digest_median": round(statistics.median(per_digest), 2) if per_digest else 0,
        "batches": len(done),
        "worker_processes": processes,
        # The largest process: each worker process has its own memory limit to keep to.
        "peak_rss_mb": round(max(peaks.values()) / 1024, 1),
    }


def cmd_digests(args) -> None:
    setup_django()
    from django.db import connection

    from postmortems import digests
    from postmortems.models import Delivery

    if not connection.settings_dict["NAME"].startswith("postmortems_bench"):
        raise SystemExit("The digest run deletes digest deliveries: only on a bench database.")
    now = digest_moment()
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def sink_count() -> int:
        return read_sink_count(Path(args.count_file)) if args.count_file else 0

    # As deployed (docker-compose.yml: `celery worker --concurrency 2`, one process per core),
    # and in one process for comparison.
    one = _run_digests(now, processes=1)
    received_before = sink_count()
    result = _run_digests(now, processes=DIGEST_PROCESSES)
    time.sleep(0.5)  # the sink writes its count just after answering
    result.update(
        now=now.isoformat(),
        managers=fx_managers(),
        emails_received_by_sink=sink_count() - received_before if args.count_file else None,
        sink=os.environ.get("BENCH_SMTP_SINK", "unknown"),
        baseline_rss_mb=round(baseline_kb / 1024, 1),
        one_process={key: one[key] for key in ("wall_s", "peak_rss_mb", "outcomes")},
    )
    sent_to = list(
        Delivery.objects.filter(kind=Delivery.Kind.WEEKLY_DIGEST)
        .order_by("pk")
        .values_list("recipient_id", "period")
    )
    if args.profile_sample and sent_to:
        # Where the time goes: the first managers and the last owners, sent again under cProfile.
        n = args.profile_sample // 2
        sample = sent_to[:n] + sent_to[-n:]
        Delivery.objects.filter(
            kind=Delivery.Kind.WEEKLY_DIGEST, recipient_id__in=[pk for pk, _ in sample]
        ).delete()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for recipient_id, period in sample:
            digests.send(recipient_id, period, now=now)
        profiler.disable()
        result["profile_sample"] = {
            "digests": len(sample),
            "wall_s_with_profiler": round(time.perf_counter() - started, 2),
        }
        for order, name in (
            ("cumulative", "digest_run.txt"),
            ("tottime", "digest_run_tottime.txt"),
        ):
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats(order).print_stats(40)
            (OUT / "profile").mkdir(parents=True, exist_ok=True)
            (OUT / "profile" / name).write_text(stream.getvalue())
    write_json(OUT / f"digests-{args.label}.json", result)
    print(json.dumps(result, indent=2))


def read_sink_count(path: Path) -> int:
    """Messages the SMTP sink has received: Postfix's smtp-sink -c writes running counters
    ("sess=3 quit=3 mesg=7", each update ending in a carriage return), bench/smtp_sink.py
    writes "COUNT BYTES"; nothing yet means none."""
    text = path.read_text() if path.exists() else ""
    counts = re.findall(r"mesg=(\d+)", text)
    if counts:
        return int(counts[-1])
    return int(text.split()[0]) if text.split() else 0


def fx_managers() -> int:
    from accounts.models import Team

    return Team.managers.through.objects.values("user_id").distinct().count()


def cmd_reminders(args) -> None:
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from postmortems import reminders

    runs = []
    for _ in range(args.runs):
        counter = QueryCounter()
        keys: list = []
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            reminders.scan(timezone.now(), dispatch=keys.append)
        runs.append(
            {
                "wall_s": round(time.perf_counter() - started, 2),
                "queries": counter.count,
                "due": len(keys),
            }
        )
        print(runs[-1])
    kinds: dict[str, int] = {}
    for key in keys:
        kinds[key.kind] = kinds.get(key.kind, 0) + 1
    steady = None
    if connection.settings_dict["NAME"].startswith("postmortems_bench"):
        # The same scan once everything due has been sent: what every later tick pays.
        from postmortems.models import Delivery

        sent = timezone.now()
        Delivery.objects.bulk_create(
            [
                Delivery(
                    kind=k.kind,
                    recipient_id=k.recipient_id,
                    object_key=k.object_key,
                    period=k.period,
                    status=Delivery.Status.SENT,
                    attempts=1,
                    claimed_at=sent,
                    sent_at=sent,
                )
                for k in keys
            ],
            batch_size=5000,
            ignore_conflicts=True,
        )
        counter = QueryCounter()
        found: list = []
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            reminders.scan(timezone.now(), dispatch=found.append)
        steady = {
            "wall_s": round(time.perf_counter() - started, 2),
            "queries": counter.count,
            "due": len(found),
        }
        print("with everything already sent:", steady)
        Delivery.objects.filter(claimed_at=sent, status=Delivery.Status.SENT).exclude(
            kind=Delivery.Kind.WEEKLY_DIGEST
        ).delete()
    result = {
        "runs": runs,
        "steady_state": steady,
        "wall_s": max([r["wall_s"] for r in runs] + ([steady["wall_s"]] if steady else [])),
        "due_by_kind": kinds,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        reminders.scan(timezone.now(), dispatch=lambda key: None)
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(35)
        (OUT / "profile").mkdir(parents=True, exist_ok=True)
        (OUT / "profile" / "reminder_scan.txt").write_text(stream.getvalue())
    write_json(OUT / f"reminders-{args.label}.json", result)


# --- report ------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except OSError:
        mem_kb = 0
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": postgres_version(),
    }


def postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect(database_url("postgres")) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001 - a missing figure must not lose the whole report
        return "unknown"


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return commit + ("-dirty" if dirty else "")


def _or_unknown(value) -> str:
    return "?" if value is None else str(value)


def _percent(value) -> str:
    return "?" if value is None else f"{value:.1%}"


def cmd_report(args) -> None:
    fx = read_json(OUT / "fixtures.json")
    load = read_json(OUT / "wrk.json")
    big = read_json(OUT / "queries-big.json")
    small = read_json(OUT / "queries-small.json")
    digests = read_json(OUT / "digests-big.json")
    digests_small = read_json(OUT / "digests-small.json")
    reminders = read_json(OUT / "reminders-big.json")
    figures = load["pages"]
    ceilings = [figures["ceiling"], figures.get("ceiling_end", figures["ceiling"])]
    ceiling_rps = statistics.mean(c["rps"] for c in ceilings)
    ceiling_cpu = [c.get("worker_cpu_ms_per_request") for c in ceilings]
    ceiling_cpu = statistics.mean(ceiling_cpu) if None not in ceiling_cpu else None
    context = {
        "machine": machine(),
        "sizes": fx["sizes"],
        "small_sizes": read_json(OUT / "fixtures-small.json")["sizes"],
        "git_commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": args.command,
        "wrk": "wrk -t1 -c8 -d10s --latency (after 4 warm-up requests), gunicorn 2 sync workers",
        "load_average_start": load["load_average_start"],
        "load_average_end": load["load_average_end"],
    }
    measurements = []
    rows = []
    sql_factor = None
    for page in plan_with_rendered(fx) + [
        Page("ceiling_end", "Bare Django view (ceiling), again", "/", "participant", "ceiling")
    ]:
        f = figures[page.name]
        # The in-process figures are per page.
        base = page.name.removesuffix("_rendered").removesuffix("_churn")
        q_big = big.get(base, big["ceiling"])["queries"]
        q_small = small.get(base, small["ceiling"])["queries"]
        share = f["rps"] / ceiling_rps
        first_p95 = figures[
            "incident_list_rendered" if page.server == "rendered" else "incident_list"
        ]["p95_ms"]
        checks = {}
        if page.server in ("app", "rendered"):
            checks = {
                "p95_ms <= 50": f["p95_ms"] <= P95_MS,
                "rps >= 10% of ceiling": share >= CEILING_SHARE,
                "queries <= 12": q_big <= MAX_QUERIES,
                "same queries at 10 and at 100k incidents": q_big == q_small,
                "no errors": f["errors"] == 0 and f["not_200"] == 0,
            }
            if base == "incident_list_deep":
                checks["p95 <= 1.5x first page"] = f["p95_ms"] <= DEEP_PAGE_FACTOR * first_p95
                # Both pages share every other cost; while those dominate, the p95 ratio hides
                # what the depth costs. The database time (in-process run) shows it.
                first_sql = big["incident_list"]["sql_ms"] or 1
                sql_factor = round(big[base]["sql_ms"] / first_sql, 1)
                checks["SQL time <= 1.5x first page"] = sql_factor <= DEEP_PAGE_FACTOR
            if base == "search":
                checks["no seq scan of a big table"] = not big[base].get("seq_scans")
        record = {
            "name": page.name,
            "kind": (
                "page_with_writes"
                if page.writes_per_second
                else {"ceiling": "ceiling", "app": "page", "rendered": "page_rendered"}[page.server]
            ),
            "writes_during": f.get("writes_during", 0),
            "label": page.label,
            "path": page.path,
            "signed_in_as": page.user,
            "rps": f["rps"],
            "p50_ms": f["p50_ms"],
            "p95_ms": f["p95_ms"],
            "p99_ms": f["p99_ms"],
            "max_ms": f["max_us"] / 1000,
            "requests": f["requests"],
            "errors": f["errors"],
            "not_200": f["not_200"],
            "response_bytes": f["response_bytes"],
            "queries": q_big,
            "queries_at_small_scale": q_small,
            "queries_when_kept": big.get(base, {}).get("queries_when_kept"),
            "sql_ms_in_process": big.get(base, {}).get("sql_ms"),
            "ratio_to_ceiling": round(share, 3),
            "worker_cpu_ms_per_request": f.get("worker_cpu_ms_per_request"),
            # The same share from CPU per request: steadier than req/s on a shared machine.
            "cpu_ratio_to_ceiling": (
                round(ceiling_cpu / f["worker_cpu_ms_per_request"], 3)
                if ceiling_cpu and f.get("worker_cpu_ms_per_request")
                else None
            ),
            "load_average_during": f.get("load_average"),
            "seq_scans": big.get(base, {}).get("seq_scans", []),
            "targets": checks,
            "met": all(checks.values()) if checks else None,
            **context,
        }
        if base == "incident_list_deep":
            record["deep_over_first"] = {
                "p95": round(f["p95_ms"] / first_p95, 2) if first_p95 else None,
                "sql_ms": sql_factor,
            }
        measurements.append(record)
        rows.append(record)
    digest_checks = {
        "wall_s <= 30": digests["wall_s"] <= DIGEST_SECONDS,
        "peak_rss_mb <= 300": digests["peak_rss_mb"] <= DIGEST_MB,
        "bounded queries (per digest the same at small scale)": digests["queries_per_digest_max"]
        <= digests_small["queries_per_digest_max"],
        "every digest reached the sink": digests["emails_received_by_sink"]
        == digests["outcomes"].get("sent", 0),
    }
    measurements.append(
        {
            "name": "digest_run",
            "kind": "job",
            "label": "Weekly digests, everyone due",
            **digests,
            "small_scale": digests_small,
            "targets": digest_checks,
            "met": all(digest_checks.values()),
            **context,
        }
    )
    reminder_checks = {"wall_s <= 5": reminders["wall_s"] <= REMINDER_SECONDS}
    measurements.append(
        {
            "name": "reminder_scan",
            "kind": "job",
            "label": "Reminder scan",
            **reminders,
            "targets": reminder_checks,
            "met": all(reminder_checks.values()),
            **context,
        }
    )
    write_json(ROOT / "bench" / "results.json", measurements)
    summary = render_summary(context, rows, measurements[-2], measurements[-1], ceiling_rps)
    (OUT / "summary.md").write_text(summary)
    print(summary)
    docs = ROOT / "docs" / "performance.md"
    if docs.exists():
        text = docs.read_text()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            docs.write_text(f"{head}{start}\n{summary}\n{end}{tail}")


def _kept_queries(rows: list[dict]) -> str:
    counts = sorted({r["queries_when_kept"] for r in rows if r["kind"] == "page"} - {None})
    return " or ".join(str(n) for n in counts) + " queries" if counts else "no figure"


def render_summary(
    context: dict, rows: list[dict], digest: dict, reminder: dict, ceiling: float
) -> str:
    m, s = context["machine"], context["sizes"]
    lines = [
        f"Measured {context['date']} at commit `{context['git_commit'][:12]}` on {m['nproc']} "
        f"× {m['cpu_model']}, {m['ram_gb']} GB RAM, PostgreSQL {m['postgresql']}, "
        f"Python {m['python']}; load average {context['load_average_start'][0]:.2f} at the "
        "start.",
        "",
        f"Data: {s['people']:,} people, {s['teams']:,} teams ({s['managers']:,} managers), "
        f"{s['incidents']:,} incidents, {s['entries']:,} timeline entries, "
        f"{s['action_items']:,} action items. Load: {context['wrk']}. "
        f"Ceiling: {ceiling:,.0f} req/s (mean of the first and last run). Worker CPU per "
        "request is measured from /proc for the gunicorn workers alone (PostgreSQL's CPU is "
        "not in it); it moves far less than req/s when other work shares the machine.",
        "",
        "Each page twice: as served, where a view repeated while nothing it shows has changed "
        "comes from memory (postmortems/kept_pages.py), and rendered on every request (a server "
        "with `KEPT_PAGES_MB=0`): what the first view after a change costs. Queries are a "
        "render's (with the change counter's); a page served from memory asks "
        f"{_kept_queries(rows)}. The incident page and the review are also measured while "
        "another connection commits a write every second (a no-op update of a team): each "
        "write moves the counter, so each worker renders those pages again after it.",
        "",
        "| Page | req/s | p50 ms | p95 ms | p99 ms | errors | worker CPU ms/request "
        "| queries (10 / 100k incidents) | share of ceiling (req/s; CPU) | targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        missed = [name for name, ok in r["targets"].items() if not ok]
        targets = (
            "—" if r["met"] is None else ("met" if not missed else "MISSED: " + "; ".join(missed))
        )
        lines.append(
            f"| {r['label']} | {r['rps']:,.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors'] + r['not_200']} | "
            f"{_or_unknown(r['worker_cpu_ms_per_request'])} | "
            f"{r['queries_at_small_scale']} / {r['queries']} | {r['ratio_to_ceiling']:.1%}; "
            f"{_percent(r['cpu_ratio_to_ceiling'])} | "
            f"{targets} |"
        )
    lines += [
        "",
        "| Job | wall time | queries | peak memory | other | targets |",
        "|---|---:|---:|---:|---|---|",
    ]
    missed = [name for name, ok in digest["targets"].items() if not ok]
    one = digest.get("one_process") or {}
    processes = digest.get("worker_processes", 1)
    lines.append(
        f"| Weekly digests: {digest['recipients']:,} due ({digest['managers']} managers and "
        f"owners of open items), {processes} worker process{'es' if processes > 1 else ''}"
        + (f" (one process: {one['wall_s']:.1f} s)" if one and processes > 1 else "")
        + f" | {digest['wall_s']:.1f} s | {digest['queries']:,} "
        f"({digest['queries_per_digest_min']}–{digest['queries_per_digest_max']} per digest) | "
        f"{digest['peak_rss_mb']:.0f} MB | {digest['emails_received_by_sink']:,} emails received "
        f"by the SMTP sink ({digest.get('sink', 'aiosmtpd')}); outcomes: "
        f"{', '.join(f'{name} {count:,}' for name, count in digest['outcomes'].items())} | "
        + ("met" if not missed else "MISSED: " + "; ".join(missed))
        + " |"
    )
    missed = [name for name, ok in reminder["targets"].items() if not ok]
    cold = max(r["wall_s"] for r in reminder["runs"])
    steady = reminder.get("steady_state") or {}
    lines.append(
        f"| Reminder scan over {s['action_items']:,} action items, empty ledger | {cold:.2f} s "
        f"(slowest of {len(reminder['runs'])}) | {reminder['runs'][0]['queries']} | "
        f"{reminder['peak_rss_mb']:.0f} MB | {reminder['runs'][0]['due']:,} reminders due | "
        + ("met" if cold <= REMINDER_SECONDS else "MISSED: wall_s <= 5")
        + " |"
    )
    if steady:
        lines.append(
            f"| The same scan with every due reminder already sent | {steady['wall_s']:.2f} s | "
            f"{steady['queries']} | — | {steady['due']:,} due | "
            + ("met" if steady["wall_s"] <= REMINDER_SECONDS else "MISSED: wall_s <= 5")
            + " |"
        )
    lines += ["", f"Command: `{context['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("ensure-db")
    p.add_argument("--db", required=True)
    p.add_argument("--sizes", required=True, help="JSON of seed_scale options")
    p.add_argument("--fixtures", required=True)
    p.set_defaults(func=cmd_ensure_db)
    sub.add_parser("schema-ok").set_defaults(func=cmd_schema_ok)
    sub.add_parser("sessions").set_defaults(func=cmd_sessions)
    p = sub.add_parser("wrk")
    p.add_argument("--app-port", type=int, required=True)
    p.add_argument("--ceiling-port", type=int, required=True)
    p.add_argument("--app-pid", type=int, default=0, help="gunicorn master, for CPU figures")
    p.add_argument("--ceiling-pid", type=int, default=0)
    p.add_argument("--render-port", type=int, required=True, help="the app keeping no page")
    p.add_argument("--render-pid", type=int, default=0)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--quiet-wait", type=int, default=0, help="seconds to wait for a quiet machine")
    p.set_defaults(func=cmd_wrk)
    p = sub.add_parser("queries")
    p.add_argument("--label", required=True, choices=["big", "small"])
    p.add_argument("--fixtures", required=True)
    p.set_defaults(func=cmd_queries)
    p = sub.add_parser("digests")
    p.add_argument("--label", required=True, choices=["big", "small"])
    p.add_argument("--count-file")
    p.add_argument("--profile-sample", type=int, default=0, help="profile this many sends")
    p.set_defaults(func=cmd_digests)
    p = sub.add_parser("reminders")
    p.add_argument("--label", required=True, choices=["big", "small"])
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--profile", action="store_true")
    p.set_defaults(func=cmd_reminders)
    p = sub.add_parser("report")
    p.add_argument("--command", default="make bench")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
