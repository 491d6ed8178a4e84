from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from postmortems import links

from .incidents import Incident


class ActionItemQuerySet(models.QuerySet):
    def open(self) -> "ActionItemQuerySet":
        return self.filter(status__in=ActionItem.OPEN_STATUSES)

    def overdue(self, today) -> "ActionItemQuerySet":
        return self.open().filter(due_on__lt=today)

    def due_between(self, start, end) -> "ActionItemQuerySet":
        return self.open().filter(due_on__gte=start, due_on__lte=end)

    def done_since(self, moment) -> "ActionItemQuerySet":
        return self.filter(status=ActionItem.Status.DONE, completed_at__gte=moment)

    def with_related(self) -> "ActionItemQuerySet":
        """Everything a list row shows, in the same query."""
        return self.select_related("incident", "owner", "team", "contributing_factor")

    def for_incident_rows(self) -> "ActionItemQuerySet":
        """What a row of an incident's action items shows (action_item_incident_rows.html)."""
        return self.select_related("owner").only(
            *("incident", "title", "kind", "due_on", "status", "priority"),
            *("owner__display_name", "owner__email"),
        )


class ActionItem(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    class Priority(models.IntegerChoices):
        HIGH = 1, "High"
        MEDIUM = 2, "Medium"
        LOW = 3, "Low"

    class Kind(models.TextChoices):
        DETECT = "detect", "Detect"
        MITIGATE = "mitigate", "Mitigate"
        PREVENT = "prevent", "Prevent"
        PROCESS = "process", "Process"
        LEARN = "learn", "Learn"

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)

    incident = models.ForeignKey(
        "postmortems.Incident", on_delete=models.CASCADE, related_name="action_items"
    )
    contributing_factor = models.ForeignKey(
        "postmortems.ContributingFactor",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="action_items",
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Owner and due date may be missing; the quality prompts flag items without them.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="action_items",
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="action_items",
    )
    due_on = models.DateField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority, default=Priority.MEDIUM)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.PREVENT)
    status = models.CharField(max_length=20, choices=Status, default=Status.OPEN)
    closed_reason = models.TextField(blank=True)
    tracker_url = models.URLField("tracker link", max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # A copy of the incident's visibility, written only by the database (item_visibility.py), so
    # that who may see an item is answered from its own row. Until the database has written it,
    # an item counts as restricted.
    incident_visibility = models.CharField(
        max_length=20, default=Incident.Visibility.RESTRICTED, editable=False
    )

    objects = ActionItemQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [
            models.Index(fields=["owner", "status", "due_on"]),
            models.Index(fields=["team", "status", "due_on"]),
            models.Index(fields=["status", "due_on"]),
            models.Index(fields=["status", "completed_at"]),
            # A team's recently done and recently created items: the review's figures and the
            # managers' digests. Without them a team's years of done items are read and dropped.
            models.Index(fields=["team", "status", "completed_at"]),
            models.Index(fields=["team", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="wont_do") | ~Q(closed_reason=""),
                name="action_item_wont_do_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return links.object_url("postmortems:action_item_detail", self.pk)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def days_overdue(self, today=None) -> int:
        """Whole days past the due date while still open; 0 when not overdue."""
        if not self.is_open or self.due_on is None:
            return 0
        today = today or timezone.localdate()
        return max((today - self.due_on).days, 0)

    def days_until_due(self, today=None) -> int | None:
        """Days left before the due date (0 on the day, negative when past); None without one."""
        if self.due_on is None:
            return None
        today = today or timezone.localdate()
        return (self.due_on - today).days

    @property
    def overdue_days(self) -> int:
        """For templates: days overdue in the viewer's own zone."""
        return self.days_overdue()

    @property
    def due_in_days(self) -> int | None:
        return self.days_until_due()

    @property
    def age_days(self) -> int:
        """Days since the item was created, counted in the viewer's zone."""
        return (timezone.localdate() - timezone.localdate(self.created_at)).days


class ActionItemChange(models.Model):
    """One recorded change of an action item: status, owner or due date, with a reason."""

    action_item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="changes")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    field = models.CharField(max_length=30)
    old_value = models.CharField(max_length=200, blank=True)
    new_value = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)

    # How each recorded field is named on the page.
    FIELD_LABELS = {"status": "Status", "owner": "Owner", "due_on": "Due date"}

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} → {self.new_value}"

    @property
    def field_label(self) -> str:
        return self.FIELD_LABELS.get(self.field, self.field.replace("_", " ").capitalize())
