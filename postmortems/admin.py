from django.contrib import admin

from .models import (
    ActionItem,
    ActionItemChange,
    ContributingFactor,
    Delivery,
    Incident,
    IncidentChange,
    Participant,
    Postmortem,
    PostmortemTransition,
    ReviewMeeting,
    Service,
    TimelineEntry,
)


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "added_at"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["human_id", "title", "severity", "status", "visibility", "created_at"]
    list_filter = ["severity", "status", "visibility"]
    search_fields = ["title"]
    inlines = [ParticipantInline]
    filter_horizontal = ["services"]
    raw_id_fields = ["created_by"]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(IncidentChange)
class IncidentChangeAdmin(admin.ModelAdmin):
    list_display = ["incident", "changed_by", "changed_at"]
    readonly_fields = ["incident", "changed_by", "changed_at", "changes"]


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    """Read-only: admins fix accounts, not stories (DESIGN.md section 3)."""

    list_display = ["incident", "author", "occurred_at", "kind", "state"]
    list_filter = ["state", "kind"]
    list_select_related = ["incident", "author"]

    def get_queryset(self, request):
        # A draft is its author's alone: not even admins read it (DESIGN.md section 3).
        return super().get_queryset(request).shared()

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Postmortem)
class PostmortemAdmin(admin.ModelAdmin):
    list_display = ["incident", "status", "version", "updated_at"]
    list_filter = ["status"]
    raw_id_fields = ["incident", "created_by", "updated_by"]


@admin.register(PostmortemTransition)
class PostmortemTransitionAdmin(admin.ModelAdmin):
    list_display = ["postmortem", "from_status", "to_status", "by", "at"]


admin.site.register(ContributingFactor)
admin.site.register(ReviewMeeting)


@admin.register(ActionItem)
class ActionItemAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "team", "status", "due_on", "priority"]
    list_filter = ["status", "priority", "kind", "team"]
    search_fields = ["title"]
    raw_id_fields = ["incident", "owner", "created_by", "contributing_factor"]


@admin.register(ActionItemChange)
class ActionItemChangeAdmin(admin.ModelAdmin):
    list_display = ["action_item", "field", "old_value", "new_value", "by", "at"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Deliveries, failures and retries of every reminder and digest."""

    list_display = ["kind", "recipient", "object_key", "period", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["recipient__email", "object_key"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
