from django.contrib import admin

from .admin_alerts import AlertInline
from .models import Incident, TimelineEvent


class TimelineInline(admin.TabularInline):
    model = TimelineEvent
    fields = ("created_at", "kind", "who", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at",)
    show_change_link = False

    def get_queryset(self, request):
        # "who" reads the actor: one join instead of a query per row.
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "severity",
        "status",
        "service",
        "detected_at",
        "acknowledged_at",
    )
    list_filter = ("status", "severity", "service")
    search_fields = ("title", "description", "service")
    # Status, severity, roles and timestamps change through services (which write the
    # timeline), never by hand here.
    readonly_fields = (
        "status",
        "severity",
        "commander",
        "comms_lead",
        "tech_lead",
        "scribe",
        "detected_at",
        "acknowledged_at",
        "resolved_at",
        "created_by",
        "created_at",
        "updated_at",
    )
    inlines = [AlertInline, TimelineInline]
    date_hierarchy = "detected_at"


@admin.register(TimelineEvent)
class TimelineEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "incident", "kind", "who", "message")
    list_filter = ("kind",)
    search_fields = ("message",)
    list_select_related = ("incident", "actor")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
