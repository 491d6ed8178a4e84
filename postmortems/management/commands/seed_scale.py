"""Load a large, realistic, deterministic data set for the benchmark (PostgreSQL only).

By default: 5,000 people in 200 teams (400 managers), 100,000 incidents, 1,000,000 timeline
entries and 300,000 action items, with participants, services, postmortems in every state,
contributing factors, review meetings and questions. Rows go in with COPY (psycopg 3), a
transaction per chunk, so the full set loads in minutes on two cores.

Times are relative to an anchor (midnight UTC today, or --anchor), so "overdue", "due soon" and
"last week" always have something in them. The same seed, sizes and anchor give the same rows.
A few known objects for the benchmark (an incident with exactly 200 shared entries, one of its
participants, a manager of several teams) are written to --fixtures as JSON.
"""

import json
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Model

from accounts.models import Team, User
from postmortems import search
from postmortems.models import (
    ActionItem,
    ContributingFactor,
    Incident,
    Participant,
    Postmortem,
    PostmortemTransition,
    ReviewMeeting,
    ReviewQuestion,
    Service,
    TimelineEntry,
)

DEFAULTS = {
    "people": 5_000,
    "teams": 200,
    "managers": 400,
    "incidents": 100_000,
    "entries": 1_000_000,
    "action_items": 300_000,
}
# Below these, the known objects and the mix of states cannot all exist.
MINIMUMS = {
    "people": 20,
    "teams": 2,
    "managers": 2,
    "incidents": 2,
    "entries": 40,
    "action_items": 10,
}
BENCH_SHARED_ENTRIES = 200
CHUNK = 50_000
SPAN_DAYS = 3 * 365  # incidents are spread over the three years before the anchor
PASSWORD = "!seed-scale-unusable"  # "!" prefix: an unusable password, nobody signs in with it

ZONES = [
    ("UTC", 10),
    ("Europe/London", 20),
    ("Europe/Berlin", 20),
    ("America/New_York", 20),
    ("America/Los_Angeles", 12),
    ("Asia/Kolkata", 10),
    ("Asia/Tokyo", 4),
    ("Australia/Sydney", 2),
    ("America/Sao_Paulo", 2),
]
FIRST = (
    "Ada Amita Andy Bea Carlos Chen Dara Elif Emma Farid Grace Hana Ivan Irene Jonas Kemi "
    "Lars Leila Maya Mara Mei Nadia Noor Oscar Priya Quinn Rafael Rosa Sam Sven Tim Uma Vera "
    "Wei Yusuf Zoe Arjun Bram Ines Kofi"
).split()
LAST = (
    "Okafor Novak Brandt Rao Chen Duval Lindqvist Garcia Kowalski Haddad Ito Jensen Kim "
    "Larsen Moreau Nakamura Oliveira Petrov Quist Rossi Silva Tanaka Ueda Varga Weber Xu "
    "Yilmaz Zimmer Abara Berg Costa Dubois Eriksen Fischer Gupta Horvat Ivanova Jovanovic "
    "Khan Lopez"
).split()
TEAM_NOUNS = (
    "Payments Platform Search Identity Checkout Mobile Data Billing Growth Infra Messaging "
    "Storage Network Security Catalog Orders Shipping Support Analytics Frontend"
).split()
SERVICES = (
    "checkout-api payments-api search auth billing inventory notifications web-frontend "
    "mobile-api recommendations orders shipping catalog identity gateway cdn dns kafka "
    "postgres-primary redis-cache elasticsearch scheduler ledger fraud-detection email-sender "
    "sms-gateway image-resizer pricing cart wishlist reviews loyalty analytics-pipeline "
    "data-warehouse feature-flags config-service service-mesh load-balancer vpn ci-runners "
    "artifact-registry kubernetes-control-plane object-storage backup-service status-page "
    "support-portal admin-console partner-api webhooks geo-service tax-service invoicing "
    "subscriptions rate-limiter session-store audit-log report-generator etl-jobs"
).split()
SYMPTOMS = (
    "latency spike|elevated 5xx errors|timeouts|certificate expiry|memory leak|disk full|"
    "connection pool exhaustion|replication lag|queue backlog|DNS resolution failures|"
    "failed deploy|partial outage|data inconsistency|rate limiting misfire|cache stampede|"
    "login failures|slow queries|crash loop|stale reads|message loss|cron job overlap|"
    "expired credentials|packet loss|thread starvation|feature flag misconfiguration|"
    "duplicate charges|missing emails|degraded search results|OOM kills|clock skew"
).split("|")
CONTEXTS = (
    "after deploy|during failover|in eu-west-1|during peak traffic|after schema migration|"
    "during maintenance window|after dependency upgrade|for enterprise customers|"
    "in the mobile app|in us-east-1|after config change|during batch import||||"
).split("|")
ACTIONS = (
    "Restarted the {svc} pods in {region}.",
    "Rolled back {svc} to the previous release.",
    "Paged the {svc} on-call engineer.",
    "Opened a bridge call and asked for help in #incidents.",
    "Scaled {svc} from {a} to {b} replicas.",
    "Flushed the {svc} cache.",
    "Posted an update on the status page.",
    "Failed the {svc} database over to the replica.",
    "Disabled the feature flag for the new {svc} code path.",
    "Raised the connection pool size of {svc} to {b}.",
    "Drained traffic away from {region}.",
    "Ran the runbook step to clear the {svc} queue.",
)
OBSERVATIONS = (
    "Error rate on {svc} at {a}% of requests.",
    "p99 latency of {svc} above {b}0 ms on the dashboard.",
    "Alerts firing for {svc} in {region}.",
    "Support reported customers seeing {symptom}.",
    "Queue depth on {svc} at {b}k messages and climbing.",
    "The deploy pipeline showed {svc} half rolled out.",
    "Logs of {svc} full of connection resets.",
    "CPU on the {svc} hosts pinned at 100%.",
    "Graphs for {svc} flat again after the change.",
    "No errors in {svc} itself; the failures came from upstream.",
)
EXPECTATIONS = (
    "Errors would stop within a couple of minutes.",
    "The autoscaler would add capacity on its own.",
    "The rollback would bring latency back to normal.",
    "The replica would take over without client changes.",
)
ASSUMPTIONS = (
    "That the last deploy was the cause; nothing else had changed that I knew of.",
    "That the alert was the usual noise from the nightly batch job.",
    "That the dashboard showed live data, not five-minute averages.",
    "That another team was already looking at it.",
)
UNDERSTANDINGS = (
    "I thought {svc} was overloaded.",
    "I thought the network between regions was the problem.",
    "At the time I did not connect the errors to the database at all.",
    "I believed the incident was over once the graphs recovered.",
)
ITEM_TITLES = (
    "Add an alert on {svc} {symptom}",
    "Write a runbook for {symptom} in {svc}",
    "Automate the {svc} failover",
    "Add a load test for {svc} before peak season",
    "Review the timeout settings of {svc}",
    "Document the {svc} rollback procedure",
    "Add capacity headroom to {svc}",
    "Make the {svc} dashboard show live data",
    "Run a game day on {symptom}",
    "Add a canary stage to the {svc} deploy",
)
FACTOR_TEXTS = (
    "The alert for {svc} fired on a symptom several steps away from the cause.",
    "The runbook for {svc} did not cover {symptom}.",
    "Two teams each assumed the other was handling {svc}.",
    "The {svc} dashboard averaged over five minutes, hiding the spike.",
    "Nobody on call had worked on {svc} before.",
)
QUESTIONS = (
    "What did the dashboard show you at this point?",
    "What made this look like the right step at the time?",
    "Who else knew about this, and how?",
    "What would have helped you see this sooner?",
)
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1", "eu-central-1")
ROLES = (
    (Participant.Role.RESPONDER, 60),
    (Participant.Role.CO_FACILITATOR, 8),
    (Participant.Role.NOTE_TAKER, 8),
    (Participant.Role.OBSERVER, 24),
)
SEVERITIES = ((1, 3), (2, 12), (3, 45), (4, 40))


def weighted(pairs) -> tuple[list, list[int]]:
    values, weights = zip(*pairs, strict=True)
    return list(values), list(weights)


class Table:
    """COPY into one model's table: the columns we generate, then every other field's default.

    A field added to a model later (with a default) is filled in without a change here; one
    without a default stops the seed with a clear message rather than a half-loaded table.
    """

    def __init__(self, model: type[Model], columns: list[str]):
        self.model = model
        fields = {f.attname: f for f in model._meta.concrete_fields}
        unknown = [name for name in columns if name not in fields]
        if unknown:
            raise CommandError(f"{model.__name__} has no field(s) {unknown}; update seed_scale.")
        # Ids we do not give are the database's to number; generated columns its to compute.
        extra = [
            f
            for name, f in fields.items()
            if name not in columns
            and not f.generated
            and not (f.primary_key and "AutoField" in type(f).__name__)
        ]
        missing = [f.name for f in extra if not f.has_default() and not f.null]
        if missing:
            raise CommandError(
                f"{model.__name__} has required field(s) {missing} that seed_scale does not fill."
            )
        self.extra = tuple(
            f.get_db_prep_save(f.get_default(), connection) if f.has_default() else None
            for f in extra
        )
        names = [fields[name].column for name in columns] + [f.column for f in extra]
        quoted = ", ".join(connection.ops.quote_name(name) for name in names)
        self.sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({quoted}) FROM STDIN"

    def load(self, rows: Iterable[tuple], total: int, label: str, say: Callable) -> int:
        """COPY the rows in chunks, each chunk its own transaction (bounded memory and queues)."""
        started, done, extra = time.monotonic(), 0, self.extra
        rows = iter(rows)
        while True:
            chunk = list(islice(rows, CHUNK))
            if not chunk:
                break
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.cursor.copy(self.sql) as copy:
                    for row in chunk:
                        copy.write_row(row + extra)
            done += len(chunk)
            if total >= 4 * CHUNK or done == total:
                say(f"  {label}: {done:,} / {total:,} ({time.monotonic() - started:.1f} s)")
        if done != total:
            raise CommandError(f"{label}: generated {done:,} rows, expected {total:,}.")
        return done


def allocate(rng: random.Random, total: int, slots: int, cap: int) -> list[int]:
    """Split `total` into `slots` counts with a long tail (exponential weights), exactly."""
    if slots == 0:
        return []
    cap = max(cap, -(-total // slots) + 1)
    weights = [rng.expovariate(1.0) for _ in range(slots)]
    scale = total / sum(weights)
    counts = [min(int(w * scale), cap) for w in weights]
    short = total - sum(counts)
    while short > 0:
        index = rng.randrange(slots)
        if counts[index] < cap:
            counts[index] += 1
            short -= 1
    return counts


class Command(BaseCommand):
    help = (
        "Load a large deterministic data set for the benchmark (PostgreSQL only). "
        "Sizes default to 5,000 people, 100,000 incidents, 1,000,000 entries, 300,000 items."
    )

    def add_arguments(self, parser):
        for name, default in DEFAULTS.items():
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                type=int,
                dest=name,
                help=f"default {default:,} (times --scale)",
            )
        parser.add_argument(
            "--scale", type=float, default=1.0, help="multiply every default size (e.g. 0.1)"
        )
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
        parser.add_argument(
            "--anchor",
            type=date.fromisoformat,
            help="the day times are relative to, YYYY-MM-DD (default: today, UTC)",
        )
        parser.add_argument(
            "--fixtures",
            default=str(Path(settings.BASE_DIR) / "bench" / "out" / "fixtures.json"),
            help="where to write the known objects' ids (default bench/out/fixtures.json)",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="first delete EVERY person, team and incident in this database",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "seed_scale needs PostgreSQL (it loads with COPY); this database is "
                f"{connection.vendor}. Set DATABASE_URL=postgres://... and run it again."
            )
        sizes = self._sizes(options)
        if options["reset"]:
            self._reset()
        elif User.objects.exists() or Incident.objects.exists():
            raise CommandError(
                "This database already has people or incidents. seed_scale loads into an empty "
                "one; pass --reset to delete everything in it first."
            )
        anchor_day = options["anchor"] or datetime.now(UTC).date()
        seeder = Seeder(sizes, options["seed"], anchor_day, say=self.stdout.write)
        started = time.monotonic()
        fixtures = seeder.run()
        fixtures["seconds"] = round(time.monotonic() - started, 1)
        path = Path(options["fixtures"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fixtures, indent=2) + "\n")
        self.stdout.write(
            self.style.SUCCESS(f"Seeded in {fixtures['seconds']} s. Known objects: {path}")
        )

    def _sizes(self, options) -> dict[str, int]:
        scale = options["scale"]
        if scale <= 0:
            raise CommandError("--scale must be above 0.")
        sizes = {}
        for name, default in DEFAULTS.items():
            value = options[name] if options[name] is not None else round(default * scale)
            sizes[name] = max(value, MINIMUMS[name])
        if sizes["managers"] > sizes["people"] // 2:
            raise CommandError("--managers can be at most half of --people.")
        return sizes

    def _reset(self) -> None:
        tables = [User._meta.db_table, Team._meta.db_table, Service._meta.db_table]
        tables.append("django_session")
        quoted = ", ".join(connection.ops.quote_name(t) for t in tables)
        with connection.cursor() as cursor:
            if connection.in_atomic_block:
                # Inside a transaction (a test), deferred foreign-key checks still pending would
                # block TRUNCATE: run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # CASCADE reaches every table that points at people, teams or services.
            cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        self.stdout.write("Emptied the database (--reset).")


class Seeder:
    def __init__(self, sizes: dict[str, int], seed: int, anchor_day: date, say: Callable):
        self.sizes = sizes
        self.seed = seed
        self.rng = random.Random(seed)
        self.anchor = datetime(anchor_day.year, anchor_day.month, anchor_day.day, tzinfo=UTC)
        self.say = say
        self.loaded: list[type[Model]] = []

    # --- helpers -------------------------------------------------------------------------------

    def load(self, model, columns, rows, total, label) -> None:
        Table(model, columns).load(rows, total, label, self.say)
        self.loaded.append(model)

    def words(self) -> dict:
        rng = self.rng
        return {
            "svc": rng.choice(SERVICES),
            "region": rng.choice(REGIONS),
            "symptom": rng.choice(SYMPTOMS),
            "a": rng.randint(2, 40),
            "b": rng.randint(5, 90),
        }

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> dict:
        s = self.sizes
        self.say(
            "Seeding {people:,} people, {teams:,} teams ({managers:,} managers), "
            "{incidents:,} incidents, {entries:,} entries, {action_items:,} action items".format(
                **s
            )
        )
        self.people()
        self.teams()
        self.services()
        self.incidents()
        self.participants()
        self.postmortems()
        self.meetings()
        self.entries()
        self.action_items()
        self.finish()
        return self.fixtures()

    def people(self) -> None:
        rng, n = self.rng, self.sizes["people"]
        zones, zone_weights = weighted(ZONES)
        self.zone = [rng.choices(zones, zone_weights)[0] for _ in range(n)]
        self.managers = list(range(self.sizes["managers"]))  # person indexes; id = index + 1
        self.is_facilitator = [i % 12 == 5 for i in range(n)]
        self.facilitators = [i for i in range(n) if self.is_facilitator[i]]
        # The benchmark's participant: neither manager nor facilitator, an ordinary engineer.
        self.bench_person = next(
            i for i in range(len(self.managers), n) if not self.is_facilitator[i]
        )

        def rows():
            for i in range(n):
                name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
                joined = self.anchor - timedelta(days=SPAN_DAYS + rng.randint(0, 400))
                yield (
                    i + 1,
                    PASSWORD,
                    f"person{i + 1:05d}@bench.example.com",
                    name,
                    self.zone[i],
                    self.is_facilitator[i],
                    False,
                    False,
                    True,
                    joined,
                )

        columns = [
            "id",
            "password",
            "email",
            "display_name",
            "time_zone",
            "is_facilitator",
            "is_staff",
            "is_superuser",
            "is_active",
            "date_joined",
        ]
        self.load(User, columns, rows(), n, "people")

    def teams(self) -> None:
        rng, n_teams, n = self.rng, self.sizes["teams"], self.sizes["people"]
        m = len(self.managers)
        managed: dict[int, list[int]] = {t: [] for t in range(n_teams)}
        for t in range(n_teams):
            for k in (2 * t, 2 * t + 1):
                managed[t].append(self.managers[k % m])
        # Some managers look after several teams: the first few take on three more each.
        for manager in self.managers[: max(1, m // 40)]:
            home = next(t for t in range(n_teams) if manager in managed[t])
            for step in range(1, 4):
                t = (home + step * max(1, n_teams // 4)) % n_teams
                if manager not in managed[t]:
                    managed[t].append(manager)
        self.teams_managed = {p: [] for p in self.managers}
        for t, people in managed.items():
            for p in people:
                self.teams_managed[p].append(t)
        self.team_of = [0] * n
        members: list[tuple[int, int]] = []
        for i in range(n):
            if i < m:
                team = self.teams_managed[i][0] if self.teams_managed[i] else i % n_teams
            else:
                team = i % n_teams
            self.team_of[i] = team
            members.append((team, i))
            if i >= m and rng.random() < 0.1:
                second = (i * 7 + 3) % n_teams
                if second != team:
                    members.append((second, i))
        self.team_members: dict[int, list[int]] = {t: [] for t in range(n_teams)}
        for t, i in members:
            self.team_members[t].append(i)
        self.bench_manager = self.managers[0]

        names = []
        for t in range(n_teams):
            noun = TEAM_NOUNS[t % len(TEAM_NOUNS)]
            names.append(f"{noun} {t // len(TEAM_NOUNS) + 1}")
        self.load(
            Team,
            ["id", "name"],
            ((t + 1, names[t]) for t in range(n_teams)),
            n_teams,
            "teams",
        )
        self.team_names = names
        through = Team.members.through
        self.load(
            through,
            ["team_id", "user_id"],
            ((t + 1, i + 1) for t, i in members),
            len(members),
            "team members",
        )
        managers = [(t + 1, p + 1) for t, people in managed.items() for p in people]
        self.load(
            Team.managers.through,
            ["team_id", "user_id"],
            iter(managers),
            len(managers),
            "team managers",
        )

    def services(self) -> None:
        self.load(
            Service,
            ["id", "name"],
            ((k + 1, name) for k, name in enumerate(SERVICES)),
            len(SERVICES),
            "services",
        )

    def incidents(self) -> None:
        rng, n = self.rng, self.sizes["incidents"]
        severities, severity_weights = weighted(SEVERITIES)
        span = timedelta(days=SPAN_DAYS) if n > 50 else timedelta(days=60)
        # The newest few happened today, so some are still being investigated.
        today = max(3, n // 1000)
        # The benchmark's incident is recent but settled: a big one, now in review.
        self.bench_incident = n - today - 37 if n > today + 40 else n // 2
        self.created = []
        self.moments = []  # (started, detected, mitigated, resolved)
        self.status = []
        self.visibility = []
        self.facilitator = []
        self.incident_services = []
        R = Incident.Status

        for i in range(n):
            if i >= n - today:
                created = self.anchor - timedelta(hours=22) * (n - i) / today
            else:
                created = self.anchor - span * (1 - (i + 0.5) / n) - timedelta(hours=24)
            created -= timedelta(minutes=rng.randint(0, 90))
            age = self.anchor - created
            roll = rng.random()
            if age < timedelta(days=1):
                status = R.INVESTIGATING if roll < 0.4 else R.MITIGATED if roll < 0.7 else None
            elif age < timedelta(days=7):
                status = R.INVESTIGATING if roll < 0.1 else R.MITIGATED if roll < 0.3 else None
            else:
                status = R.MITIGATED if roll < 0.01 else None
            status = status or R.RESOLVED
            if i == self.bench_incident:
                status = R.RESOLVED
            started = created - timedelta(minutes=rng.randint(2, 60))
            detected = started + timedelta(minutes=rng.randint(1, 30))
            mitigated = detected + timedelta(minutes=rng.randint(5, 240))
            resolved = mitigated + timedelta(minutes=rng.randint(10, 600))
            if status != R.RESOLVED:
                resolved = None
                if status == R.INVESTIGATING:
                    mitigated = None
            if resolved and resolved > self.anchor:
                resolved = self.anchor - timedelta(minutes=5)
                mitigated = min(mitigated, resolved)
            if mitigated and mitigated > self.anchor:
                mitigated = self.anchor - timedelta(minutes=10)
            self.created.append(created)
            self.moments.append((started, detected, mitigated, resolved))
            self.status.append(status)
            restricted = rng.random() < 0.15 and i != self.bench_incident
            self.visibility.append("restricted" if restricted else "internal")
            self.facilitator.append(rng.choice(self.facilitators))
            services = rng.sample(range(len(SERVICES)), rng.choice((1, 1, 2, 2, 3)))
            self.incident_services.append(services)

        def rows():
            for i in range(n):
                svc = SERVICES[self.incident_services[i][0]]
                symptom, context = rng.choice(SYMPTOMS), rng.choice(CONTEXTS)
                title = f"{svc} {symptom} {context}".strip()
                title = title[0].upper() + title[1:]
                if i == self.bench_incident:
                    title = "Checkout payments failing after a database failover (benchmark)"
                started, detected, mitigated, resolved = self.moments[i]
                summary = (
                    f"{svc} showed {symptom} for about {rng.randint(5, 180)} minutes. "
                    f"Roughly {rng.randint(1, 60)}% of requests were affected."
                )
                yield (
                    i + 1,
                    title,
                    rng.choices(severities, severity_weights)[0] if i != self.bench_incident else 2,
                    self.status[i],
                    self.visibility[i],
                    summary,
                    f"Customers of {svc} saw errors; some retried successfully.",
                    started,
                    detected,
                    mitigated,
                    resolved,
                    self.facilitator[i] + 1,
                    self.created[i],
                    resolved or mitigated or self.created[i],
                )

        columns = [
            "id",
            "title",
            "severity",
            "status",
            "visibility",
            "summary",
            "customer_impact",
            "started_at",
            "detected_at",
            "mitigated_at",
            "resolved_at",
            "created_by_id",
            "created_at",
            "updated_at",
        ]
        self.load(Incident, columns, rows(), n, "incidents")
        links = sum(len(s) for s in self.incident_services)
        self.load(
            Incident.services.through,
            ["incident_id", "service_id"],
            ((i + 1, s + 1) for i in range(n) for s in self.incident_services[i]),
            links,
            "incident services",
        )

    def participants(self) -> None:
        rng, n, people = self.rng, self.sizes["incidents"], self.sizes["people"]
        roles, role_weights = weighted(ROLES)
        self.people_of: list[list[tuple[int, str]]] = []  # (person, role) per incident
        for i in range(n):
            facilitator = self.facilitator[i]
            chosen = {facilitator}
            crew = [(facilitator, Participant.Role.FACILITATOR)]
            size = 10 if i == self.bench_incident else rng.randint(1, 6)
            if i == self.bench_incident:
                chosen.add(self.bench_person)
                crew.append((self.bench_person, Participant.Role.RESPONDER))
            # Mostly people from one team, as incidents usually are.
            team = self.team_members[rng.randrange(self.sizes["teams"])]
            while len(crew) < size + 1:
                person = rng.choice(team) if rng.random() < 0.7 else rng.randrange(people)
                if person not in chosen:
                    chosen.add(person)
                    role = rng.choices(roles, role_weights)[0]
                    if i == self.bench_incident and role == Participant.Role.OBSERVER:
                        role = Participant.Role.RESPONDER
                    crew.append((person, role))
            self.people_of.append(crew)
        total = sum(len(crew) for crew in self.people_of)

        def rows():
            pk = 0
            for i, crew in enumerate(self.people_of):
                added = self.created[i] + timedelta(minutes=rng.randint(1, 30))
                for person, role in crew:
                    pk += 1
                    yield (
                        pk,
                        i + 1,
                        person + 1,
                        role,
                        self.facilitator[i] + 1,
                        added + timedelta(minutes=rng.randint(0, 120)),
                    )

        columns = ["id", "incident_id", "user_id", "role", "added_by_id", "added_at"]
        self.load(Participant, columns, rows(), total, "participants")

    def postmortems(self) -> None:
        """Write-ups in every state: old ones mostly published, recent ones in draft or review."""
        rng, n = self.rng, self.sizes["incidents"]
        P = Postmortem.Status
        self.postmortem_status: dict[int, str] = {}
        for i in range(n):
            if self.status[i] != Incident.Status.RESOLVED and rng.random() < 0.7:
                continue  # no write-up yet
            age = self.anchor - self.created[i]
            roll = rng.random()
            if age > timedelta(days=30):
                status = P.PUBLISHED if roll < 0.78 else P.NOT_REQUIRED if roll < 0.9 else P.DRAFT
            elif age > timedelta(days=7):
                status = P.DRAFT if roll < 0.4 else P.IN_REVIEW if roll < 0.75 else P.PUBLISHED
            else:
                status = P.DRAFT if roll < 0.8 else P.IN_REVIEW
            if i == self.bench_incident:
                status = P.IN_REVIEW
            self.postmortem_status[i] = status
        transitions: list[tuple] = []
        factors: list[tuple] = []

        def rows():
            for pk, (i, status) in enumerate(self.postmortem_status.items(), start=1):
                author = self.facilitator[i] + 1
                created = (self.moments[i][3] or self.created[i]) + timedelta(hours=2)
                created = min(created, self.anchor - timedelta(minutes=30))
                submitted = published = None
                updated = created
                if status in (P.IN_REVIEW, P.PUBLISHED):
                    submitted = min(created + timedelta(days=rng.randint(1, 6)), self.anchor)
                    transitions.append((pk, P.DRAFT, P.IN_REVIEW, author, submitted, ""))
                    updated = submitted
                if status == P.PUBLISHED:
                    published = min(submitted + timedelta(days=rng.randint(1, 5)), self.anchor)
                    approver = self.managers[rng.randrange(len(self.managers))] + 1
                    transitions.append((pk, P.IN_REVIEW, P.PUBLISHED, approver, published, ""))
                    updated = published
                reason = ""
                if status == P.NOT_REQUIRED:
                    reason = "A near miss with no customer impact; the team discussed it instead."
                    transitions.append((pk, P.DRAFT, P.NOT_REQUIRED, author, updated, reason))
                if status in (P.IN_REVIEW, P.PUBLISHED):
                    for _ in range(rng.randint(1, 3)):
                        category = rng.choice(ContributingFactor.Category.values)
                        text = rng.choice(FACTOR_TEXTS).format(**self.words())
                        factors.append((pk, category, text, updated))
                w = self.words()
                yield (
                    pk,
                    i + 1,
                    status,
                    rng.randint(1, 6),
                    f"{w['svc']} had {w['symptom']}; see the merged timeline for the detail.",
                    f"About {w['a']}% of requests to {w['svc']} failed for {w['b']} minutes.",
                    "Responders followed the alert, rolled back, then found the real trigger.",
                    "The on-call rotation answered within minutes; the rollback was rehearsed.",
                    "The failure started outside peak hours.",
                    "The dashboards averaged over five minutes and hid the spike.",
                    "Alerts should point at causes people can act on.",
                    "",
                    reason,
                    author,
                    created,
                    author,
                    updated,
                    submitted,
                    published,
                )

        columns = [
            "id",
            "incident_id",
            "status",
            "version",
            "summary",
            "impact",
            "narrative",
            "went_well",
            "got_lucky",
            "difficult",
            "learning_points",
            "open_questions",
            "not_required_reason",
            "created_by_id",
            "created_at",
            "updated_by_id",
            "updated_at",
            "submitted_at",
            "published_at",
        ]
        self.load(Postmortem, columns, rows(), len(self.postmortem_status), "postmortems")
        columns = ["postmortem_id", "from_status", "to_status", "by_id", "at", "comment"]
        self.load(PostmortemTransition, columns, iter(transitions), len(transitions), "transitions")
        columns = ["postmortem_id", "category", "description", "created_at"]
        self.load(ContributingFactor, columns, iter(factors), len(factors), "factors")

    def meetings(self) -> None:
        """Review meetings for recent incidents still in review: some soon, some just past."""
        rng = self.rng
        P = Postmortem.Status
        meetings, attendees = [], []
        for i, status in self.postmortem_status.items():
            if status not in (P.DRAFT, P.IN_REVIEW):
                continue
            if self.anchor - self.created[i] > timedelta(days=21):
                continue
            if rng.random() < 0.4 and i != self.bench_incident:
                continue
            pk = len(meetings) + 1
            starts = self.anchor + timedelta(hours=rng.randint(-72, 120))
            starts = starts.replace(minute=0)
            meetings.append((pk, i + 1, starts, 60, "Room 4.12", "", self.facilitator[i] + 1, 0))
            for person, role in self.people_of[i]:
                if role != Participant.Role.OBSERVER:
                    attendees.append((pk, person + 1))
        columns = [
            "id",
            "incident_id",
            "starts_at",
            "duration_minutes",
            "location",
            "video_url",
            "organiser_id",
            "sequence",
        ]
        self.load(ReviewMeeting, columns, iter(meetings), len(meetings), "review meetings")
        self.load(
            ReviewMeeting.attendees.through,
            ["reviewmeeting_id", "user_id"],
            iter(attendees),
            len(attendees),
            "meeting attendees",
        )

    def entries(self) -> None:
        rng, n, total = self.rng, self.sizes["incidents"], self.sizes["entries"]
        b = self.bench_incident
        self.bench_shared = min(BENCH_SHARED_ENTRIES, total // 4)
        bench_drafts = 8
        rest = total - self.bench_shared - bench_drafts
        others = allocate(rng, rest, n - 1, cap=180)
        counts = others[:b] + [self.bench_shared + bench_drafts] + others[b:]
        kinds = TimelineEntry.Kind.values
        questions: list[tuple] = []
        self.bench_person_entries = {"shared": 0, "draft": 0}

        def rows():
            pk = 0
            for i in range(n):
                count = counts[i]
                if not count:
                    continue
                authors = [p for p, role in self.people_of[i] if role != "observer"]
                bench_others = [p for p in authors if p != self.bench_person]
                started = self.moments[i][0]
                end = self.moments[i][3] or self.moments[i][2] or self.created[i]
                length = max((end - started).total_seconds(), 600)
                recent = self.anchor - self.created[i] < timedelta(days=7)
                written = min(end + timedelta(hours=6), self.anchor - timedelta(minutes=1))
                for k in range(count):
                    pk += 1
                    if i == b:
                        shared = k < self.bench_shared
                        # The benchmark person's account: 25 shared entries and 5 drafts.
                        mine = k % 8 == 1 if shared else k < self.bench_shared + 5
                        author = self.bench_person if mine else rng.choice(bench_others)
                        if mine:
                            self.bench_person_entries["shared" if shared else "draft"] += 1
                    else:
                        shared = rng.random() < (0.7 if recent else 0.9)
                        author = rng.choice(authors)
                    occurred = started + timedelta(seconds=int(rng.random() * length))
                    w = self.words()
                    action = observation = ""
                    roll = rng.random()
                    if roll < 0.45:
                        action = rng.choice(ACTIONS).format(**w)
                    elif roll < 0.8:
                        observation = rng.choice(OBSERVATIONS).format(**w)
                    else:
                        action = rng.choice(ACTIONS).format(**w)
                        observation = rng.choice(OBSERVATIONS).format(**w)
                    roll = rng.random()
                    expectation = rng.choice(EXPECTATIONS) if roll < 0.25 else ""
                    assumption = rng.choice(ASSUMPTIONS) if 0.15 < roll < 0.35 else ""
                    understanding = rng.choice(UNDERSTANDINGS).format(**w) if roll > 0.7 else ""
                    if shared and rng.random() < (0.05 if i == b else 0.01):
                        asker = self.facilitator[i] + 1
                        text = rng.choice(QUESTIONS)
                        questions.append((pk, asker, text, written + timedelta(hours=1)))
                    yield (
                        pk,
                        i + 1,
                        author + 1,
                        occurred,
                        self.zone[author],
                        rng.random() < 0.2,
                        action,
                        observation,
                        expectation,
                        assumption,
                        understanding,
                        rng.choice(kinds),
                        "",
                        "recollection" if rng.random() < 0.3 else "observed",
                        "shared" if shared else "draft",
                        written if shared else None,
                        "",
                        1,
                        written,
                        written,
                    )

        columns = [
            "id",
            "incident_id",
            "author_id",
            "occurred_at",
            "occurred_tz",
            "is_approximate",
            "action",
            "observation",
            "expectation",
            "assumption",
            "understanding",
            "kind",
            "evidence_url",
            "basis",
            "state",
            "shared_at",
            "key_moment",
            "version",
            "created_at",
            "updated_at",
        ]
        # The search's timeline documents: once per incident after the load, not once per row.
        with connection.cursor() as cursor:
            cursor.execute(search.BULK_LOAD_ON)
        try:
            self.load(TimelineEntry, columns, rows(), total, "timeline entries")
        finally:
            with connection.cursor() as cursor:
                cursor.execute(search.BULK_LOAD_OFF)
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(search.REFRESH_ALL)
        self.say(f"  timeline search documents: {time.monotonic() - started:.1f} s")
        columns = ["entry_id", "asked_by_id", "text", "created_at"]
        self.load(ReviewQuestion, columns, iter(questions), len(questions), "review questions")

    def action_items(self) -> None:
        rng, n, total = self.rng, self.sizes["incidents"], self.sizes["action_items"]
        counts = allocate(rng, total, n, cap=40)
        S = ActionItem.Status
        kinds = ActionItem.Kind.values
        people = self.sizes["people"]

        def status_for(age: timedelta) -> str:
            roll = rng.random()
            if age > timedelta(days=120):
                return (
                    S.DONE
                    if roll < 0.78
                    else S.WONT_DO
                    if roll < 0.88
                    else (S.OPEN if roll < 0.96 else S.IN_PROGRESS)
                )
            return (
                S.OPEN
                if roll < 0.45
                else S.IN_PROGRESS
                if roll < 0.65
                else (S.DONE if roll < 0.95 else S.WONT_DO)
            )

        def rows():
            pk = 0
            latest = self.anchor - timedelta(minutes=1)
            for i in range(n):
                crew = [p for p, role in self.people_of[i] if role != "observer"]
                restricted = self.visibility[i] == "restricted"
                for _ in range(counts[i]):
                    pk += 1
                    roll = rng.random()
                    if roll < 0.03:
                        owner = None
                    elif roll < 0.88 or restricted:
                        owner = rng.choice(crew)
                    else:
                        owner = rng.randrange(people)
                    team = (
                        self.team_of[owner]
                        if owner is not None
                        else rng.randrange(self.sizes["teams"])
                    )
                    created = min(
                        self.created[i] + timedelta(hours=rng.randint(2, 24 * 14)), latest
                    )
                    due = None
                    if rng.random() > 0.02:
                        due = created.date() + timedelta(days=rng.randint(7, 90))
                    status = status_for(self.anchor - created)
                    completed = None
                    reason = ""
                    if status == S.DONE:
                        completed = min(created + timedelta(hours=rng.randint(4, 24 * 60)), latest)
                    elif status == S.WONT_DO:
                        reason = "Superseded by the platform migration."
                    w = self.words()
                    yield (
                        pk,
                        i + 1,
                        rng.choice(ITEM_TITLES).format(**w),
                        f"Follow-up from the review of INC-{i + 1}.",
                        owner + 1 if owner is not None else None,
                        team + 1,
                        due,
                        rng.choice((1, 2, 2, 2, 3)),
                        rng.choice(kinds),
                        status,
                        reason,
                        "",
                        self.facilitator[i] + 1,
                        created,
                        completed,
                    )

        columns = [
            "id",
            "incident_id",
            "title",
            "description",
            "owner_id",
            "team_id",
            "due_on",
            "priority",
            "kind",
            "status",
            "closed_reason",
            "tracker_url",
            "created_by_id",
            "created_at",
            "completed_at",
        ]
        self.load(ActionItem, columns, rows(), total, "action items")

    def finish(self) -> None:
        """Point the id sequences past the loaded rows, and give the planner fresh statistics."""
        started = time.monotonic()
        models = list(dict.fromkeys(self.loaded))
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
            tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
            # VACUUM also sets the visibility map (index-only scans); it cannot run in a
            # transaction, so under a test's transaction only ANALYZE.
            verb = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            cursor.execute(f"{verb} {tables}")
        self.say(f"  sequences and {verb.split()[0].lower()}: {time.monotonic() - started:.1f} s")

    def fixtures(self) -> dict:
        b = self.bench_incident
        manager = self.bench_manager
        return {
            "seed": self.seed,
            "anchor": self.anchor.date().isoformat(),
            "sizes": self.sizes,
            "bench_incident_id": b + 1,
            "bench_incident_shared_entries": self.bench_shared,
            "participant_id": self.bench_person + 1,
            "participant_email": f"person{self.bench_person + 1:05d}@bench.example.com",
            "participant_entries": self.bench_person_entries,
            "manager_id": manager + 1,
            "manager_email": f"person{manager + 1:05d}@bench.example.com",
            "manager_team_ids": sorted(t + 1 for t in self.teams_managed[manager]),
            "search_term": "certificate",
            "service": SERVICES[0],
        }
