from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Invitation, Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "is_facilitator", "is_staff", "is_active"]
    list_filter = ["is_facilitator", "is_staff", "is_superuser", "is_active", "teams"]
    search_fields = ["email", "display_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["display_name", "time_zone"]}),
        (
            "Roles",
            {"fields": ["is_active", "is_facilitator", "is_staff", "is_superuser", "groups"]},
        ),
        (
            "Notifications",
            {
                "fields": [
                    "notify_account_requests",
                    "notify_review_meetings",
                    "notify_postmortem_overdue",
                    "notify_action_items",
                    "notify_weekly_digest",
                ]
            },
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {"classes": ["wide"], "fields": ["email", "display_name", "password1", "password2"]},
        ),
    ]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]
    filter_horizontal = ["members", "managers"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["user", "invited_by", "created_at", "accepted_at"]
    list_select_related = ["user", "invited_by"]
    readonly_fields = ["user", "invited_by", "created_at", "accepted_at"]

    def has_add_permission(self, request) -> bool:
        # Its person is read-only here, so an "add" could only fail (500): invitations are made,
        # and emailed, by the invite page.
        return False
