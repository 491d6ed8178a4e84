import re
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorField
from django.db import connections, models
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from postmortems import links, search

# Larger numbers cannot be a primary key, and comparing with them overflows the database driver.
MAX_PK = 2**63 - 1
HUMAN_ID_RE = re.compile(r"^\s*(?:inc\s*-?\s*)?(\d{1,19})\s*$", re.IGNORECASE)
# Full-text search on PostgreSQL: titles and summaries (Incident.search_document) and shared
# timelines (Incident.timeline_document, kept by postmortems/search.py's trigger).
SEARCH_CONFIG = search.CONFIG


class SearchDocument(SearchVector):
    """The words of the title and summary as a PostgreSQL tsvector. SQLite has no such type:
    there the column holds an empty text, and the search matches substrings instead."""

    def as_sqlite(self, compiler, connection, **extra_context):
        return "''", []


class PostgresGinIndex(GinIndex):
    """A GIN index on PostgreSQL, and nothing at all elsewhere: SQLite (development, tests)
    has no GIN indexes and searches without one (IncidentQuerySet._words)."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return ""  # The schema editor runs it as an empty statement: a no-op.
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return ""
        return super().remove_sql(model, schema_editor, **kwargs)


def human_duration(value: timedelta | None) -> str:
    """A duration as people say it: "1 h 23 min", "2 d 5 h", "under 1 min"; "" for None."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    if minutes < 1:
        return "under 1 min"
    days, minutes = divmod(minutes, 60 * 24)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    parts.append(f"{minutes} min" if minutes else "")
    return " ".join(part for part in parts if part)


class Service(models.Model):
    """An affected service or tag, e.g. "checkout-api"."""

    name = models.CharField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IncidentQuerySet(models.QuerySet):
    def involving(self, user) -> "IncidentQuerySet":
        return self.filter(participants__user=user)

    def search(self, text: str) -> "IncidentQuerySet":
        """By human id ("INC-42", "inc 42", "42") or by words in the title, the summary or a
        shared timeline entry (never a draft)."""
        text = text.strip()
        if not text:
            return self
        condition = self._words(text)
        match = HUMAN_ID_RE.match(text)
        if match and int(match.group(1)) <= MAX_PK:
            condition |= Q(pk=int(match.group(1)))
        return self.filter(condition)

    def _words(self, text: str) -> Q:
        """PostgreSQL: full-text search through the GIN indexes ("certificates" finds
        "certificate"; quotes, "or" and -word work as on the web). Elsewhere (SQLite in
        development and tests): the words as one substring, ignoring case."""
        if connections[self.db].vendor == "postgresql":
            words = SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")
            return Q(search_document=words) | Q(timeline_document=words)
        from .timeline import TimelineEntry  # the timeline module imports this one

        in_entry = Q()
        for name in TimelineEntry.TEXT_FIELDS:
            in_entry |= Q(**{f"{name}__icontains": text})
        shared = TimelineEntry.objects.filter(in_entry, incident=OuterRef("pk"), state="shared")
        return Q(title__icontains=text) | Q(summary__icontains=text) | Exists(shared)

    def for_list(self) -> "IncidentQuerySet":
        """What a table row shows, in a fixed number of queries however many rows there are:
        with add_service_names() on the rows of a page."""
        # A subquery rather than Count("participants"): filters joining other relations cannot
        # multiply the count.
        participants = (
            Participant.objects.filter(incident=OuterRef("pk"))
            .order_by()
            .values("incident")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            self.annotate(
                participant_count=Coalesce(
                    Subquery(participants, output_field=IntegerField()), Value(0)
                )
            )
            # What a row shows and the keyset pagination orders by, no more.
            .only("title", "severity", "status", "visibility", "created_at")
        )


def add_service_names(incidents: list["Incident"]) -> list["Incident"]:
    """Each incident's `service_names`, sorted, in one query of (incident, name) pairs: what a
    list row shows of its services, without prefetch_related's managers and Service objects
    (a fifth of the incident list's time)."""
    names: dict[int, list[str]] = {incident.pk: [] for incident in incidents}
    pairs = (
        Incident.services.through.objects.filter(incident_id__in=list(names))
        .order_by("service__name")
        .values_list("incident_id", "service__name")
    )
    for incident_id, name in pairs:
        names[incident_id].append(name)
    for incident in incidents:
        incident.service_names = names[incident.pk]
    return incidents


class IncidentManager(models.Manager.from_queryset(IncidentQuerySet)):
    def get_queryset(self) -> IncidentQuerySet:
        # The search documents are only ever matched against (in SQL), never read: loading them
        # with every incident carried tsvectors of its title, summary and timeline for nothing.
        return super().get_queryset().defer("search_document", "timeline_document")


class Incident(models.Model):
    class Severity(models.IntegerChoices):
        SEV1 = 1, "SEV1 — critical: widespread outage or data loss"
        SEV2 = 2, "SEV2 — major: a core feature down for many customers"
        SEV3 = 3, "SEV3 — minor: degraded, with a workaround"
        SEV4 = 4, "SEV4 — low: little or no customer impact, or a near miss"

    class Status(models.TextChoices):
        INVESTIGATING = "investigating", "Investigating"
        MITIGATED = "mitigated", "Mitigated"
        RESOLVED = "resolved", "Resolved"

    class Visibility(models.TextChoices):
        INTERNAL = "internal", "Internal — everyone signed in can read it"
        RESTRICTED = "restricted", "Restricted — participants and admins only"

    title = models.CharField(max_length=200)
    severity = models.PositiveSmallIntegerField(choices=Severity, default=Severity.SEV3)
    status = models.CharField(max_length=20, choices=Status, default=Status.INVESTIGATING)
    visibility = models.CharField(max_length=20, choices=Visibility, default=Visibility.INTERNAL)
    summary = models.TextField(blank=True)
    customer_impact = models.TextField(blank=True)
    services = models.ManyToManyField(Service, related_name="incidents", blank=True)
    # Key moments; each optional, validated for order (`clean`).
    started_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Kept by the database, for the search's GIN index. Stored rather than an index on the
    # expression: a list walking the date index checks each row against the stored words in
    # about a microsecond, where working out to_tsvector again took 15 (docs/performance.md).
    search_document = models.GeneratedField(
        expression=SearchDocument("title", "summary", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # The words of the shared timeline, kept by a trigger on the entries table (search.py).
    timeline_document = SearchVectorField(null=True, editable=False)

    objects = IncidentManager()

    KEY_MOMENTS = ("started_at", "detected_at", "mitigated_at", "resolved_at")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["severity", "-created_at"]),
            models.Index(fields=["visibility", "-created_at"]),
            PostgresGinIndex(fields=["search_document"], name="incident_search"),
            PostgresGinIndex(fields=["timeline_document"], name="incident_timeline_search"),
        ]

    def __str__(self) -> str:
        return f"{self.human_id} {self.title}"

    def get_absolute_url(self) -> str:
        return links.object_url("postmortems:incident_detail", self.pk)

    @property
    def human_id(self) -> str:
        return f"INC-{self.pk}"

    @property
    def is_restricted(self) -> bool:
        return self.visibility == self.Visibility.RESTRICTED

    def _since_start(self, moment) -> timedelta | None:
        if self.started_at and moment:
            return moment - self.started_at
        return None

    @property
    def time_to_detect(self) -> timedelta | None:
        return self._since_start(self.detected_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return self._since_start(self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self._since_start(self.resolved_at)

    @property
    def severity_label(self) -> str:
        """The short name, "SEV2"; `get_severity_display` carries the description too."""
        return f"SEV{self.severity}"

    @property
    def severity_description(self) -> str:
        """The one-line meaning of the severity, "major: a core feature down for many…"."""
        return self.get_severity_display().split(" — ", 1)[-1]

    def key_moments(self) -> list[dict]:
        """The four moments in order, each with its time (or None) and the time since start."""
        durations = {
            "detected_at": ("time to detect", self.time_to_detect),
            "mitigated_at": ("time to mitigate", self.time_to_mitigate),
            "resolved_at": ("time to resolve", self.time_to_resolve),
        }
        moments = []
        for name in self.KEY_MOMENTS:
            label, duration = durations.get(name, ("", None))
            moments.append(
                {
                    "name": name,
                    "label": self._meta.get_field(name).verbose_name.removesuffix(" at"),
                    "at": getattr(self, name),
                    "duration_label": label,
                    "duration": human_duration(duration) if duration is not None else "",
                }
            )
        return moments


class IncidentChange(models.Model):
    """One edit of an incident's fields: who, when, and each field's old and new value."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="changes")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    # {"field name": ["old as text", "new as text"], ...}
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.incident.human_id} changed by {self.changed_by}"


class Participant(models.Model):
    """A person's role in one incident."""

    class Role(models.TextChoices):
        FACILITATOR = "facilitator", "Facilitator"
        CO_FACILITATOR = "co_facilitator", "Co-facilitator"
        NOTE_TAKER = "note_taker", "Note-taker"
        RESPONDER = "responder", "Responder"
        OBSERVER = "observer", "Observer"

    # Roles that may edit the write-up and submit it (DESIGN.md section 3).
    EDITOR_ROLES = (Role.FACILITATOR, Role.CO_FACILITATOR, Role.NOTE_TAKER)
    FACILITATING_ROLES = (Role.FACILITATOR, Role.CO_FACILITATOR)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    role = models.CharField(max_length=20, choices=Role, default=Role.RESPONDER)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["incident", "added_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "user"], name="one_role_per_incident"),
        ]
        indexes = [models.Index(fields=["user", "incident"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.incident.human_id}"

    @property
    def is_facilitating(self) -> bool:
        return self.role in self.FACILITATING_ROLES
