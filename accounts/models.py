import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError("“%(value)s” is not a time zone we know.", params={"value": value})


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def names(self, ids) -> dict[int, tuple[str, str]]:
        """Each of these people's (display name, email) by id, in one small query: what a list
        needs to name its owners without joining every account."""
        rows = self.filter(pk__in=set(ids) - {None}).order_by()
        return {
            pk: (name, email) for pk, name, email in rows.values_list("pk", "display_name", "email")
        }

    def get_by_natural_key(self, username: str):
        # Sign-in names are email addresses; nobody should have to remember their capitals.
        # No address is longer than the field holds: a longer name (a pasted megabyte) is simply
        # unknown, rather than a LIKE pattern SQLite refuses with an error (a 500 at sign-in).
        if len(username) > self.model._meta.get_field(self.model.USERNAME_FIELD).max_length:
            raise self.model.DoesNotExist
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with their email address; sees every time in their own zone."""

    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Facilitators open incidents and run reviews (DESIGN.md section 3).
    is_facilitator = models.BooleanField(
        default=False, help_text="May open incidents and facilitate reviews."
    )
    is_staff = models.BooleanField(default=False, help_text="May sign in to the admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    # Notification preferences: one switch per kind of email (DESIGN.md section 5).
    notify_account_requests = models.BooleanField(
        "requests and reminders to write my account", default=True
    )
    notify_review_meetings = models.BooleanField("review meeting reminders", default=True)
    notify_postmortem_overdue = models.BooleanField(
        "nudges about postmortems I facilitate", default=True
    )
    notify_action_items = models.BooleanField("reminders about my action items", default=True)
    notify_weekly_digest = models.BooleanField("weekly action-item digest", default=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["display_name", "email"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("accounts:profile")

    @property
    def name(self) -> str:
        return self.name_of(self.display_name, self.email)

    @staticmethod
    def name_of(display_name: str, email: str) -> str:
        """How a person is named from these two fields (for lists that read only those)."""
        return display_name or email.split("@")[0]

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="managed_teams", blank=True
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Invitation(models.Model):
    """A person asked to join. The link is signed and expires; `accepted_at` makes it single-use."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.user.email}"

    @property
    def is_accepted(self) -> bool:
        return self.accepted_at is not None

    def invalidated_by_newer(self) -> bool:
        """Re-inviting someone retires the links sent before."""
        return Invitation.objects.filter(
            user_id=self.user_id, created_at__gt=self.created_at
        ).exists()
