"""Admin for alert sources, alerts, alert groups and the ingest outbox."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from ..models import Alert, AlertGroup, AlertSource, IngestOutbox
from .mixins import FINITE_JSON, ChosenOnlyRelatedFilter, NewestRowsInline, ReadOnlyAdmin


@admin.register(AlertSource)
class AlertSourceAdmin(admin.ModelAdmin):
    formfield_overrides = FINITE_JSON
    list_display = ("name", "slug", "kind", "auth_mode", "secret_env", "default_service", "enabled")
    list_filter = ("kind", "auth_mode", "enabled")
    search_fields = ("name", "slug", "default_service")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("hook_path", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "hook_path", "kind", "enabled")}),
        ("Authentication", {"fields": ("auth_mode", "secret_env")}),
        (
            "Normalising and grouping",
            {
                "fields": (
                    "default_service",
                    "severity_mapping",
                    "group_window_seconds",
                    "suspend_seconds",
                    "move_to_monitoring_when_cleared",
                )
            },
        ),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Webhook path")
    def hook_path(self, obj: AlertSource) -> str:
        return f"/hooks/{obj.slug}/" if obj.slug else "—"


class AlertDisplay:
    """The alert's labels and source link, for the alert admin and the incident's inline."""

    @admin.display(description="Labels")
    def label_list(self, obj: Alert) -> str:
        return format_html_join(
            " ", '<code style="white-space:nowrap">{}={}</code>', sorted(obj.labels.items())[:30]
        )

    @admin.display(description="Link")
    def source_link(self, obj: Alert) -> str:
        # source_url was checked to be http(s) on the way in; format_html escapes it.
        if not obj.source_url:
            return "—"
        return format_html(
            '<a href="{}" rel="noopener noreferrer" target="_blank">source</a>', obj.source_url
        )


@admin.register(Alert)
class AlertAdmin(AlertDisplay, ReadOnlyAdmin, admin.ModelAdmin):
    # Alerts arrive through the webhooks; an operator may move one to another incident.
    allow_change = True
    allow_delete = True
    list_display = (
        "title",
        "status",
        "severity",
        "service",
        "source",
        "incident",
        "count",
        "last_seen",
    )
    list_filter = (("incident", ChosenOnlyRelatedFilter), "status", "severity", "source")
    search_fields = ("title", "dedup_key", "service", "group_key")
    list_select_related = ("source", "incident")
    date_hierarchy = "last_seen"
    raw_id_fields = ("incident",)
    readonly_fields = [f.name for f in Alert._meta.fields if f.name != "incident"] + [
        "label_list",
        "source_link",
    ]


class AlertInline(AlertDisplay, NewestRowsInline, admin.TabularInline):
    """For IncidentAdmin.inlines: the incident's newest alerts, with labels and a link back."""

    model = Alert
    fields = (
        "title",
        "status",
        "severity",
        "source",
        "count",
        "last_seen",
        "label_list",
        "source_link",
    )
    readonly_fields = fields
    show_change_link = True
    ordering = ("-last_seen",)

    def get_queryset(self, request):
        # The source column: one join instead of a query per row.
        return super().get_queryset(request).select_related("source")


@admin.register(IngestOutbox)
class IngestOutboxAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    allow_delete = True

    list_display = (
        "id",
        "source",
        "created_at",
        "dispatched_at",
        "processed_at",
        "attempts",
        "last_error",
    )
    list_filter = ("source",)
    list_select_related = ("source",)
    readonly_fields = (
        "source",
        "alert_ids",
        "created_at",
        "dispatched_at",
        "processed_at",
        "attempts",
        "last_error",
    )


@admin.register(AlertGroup)
class AlertGroupAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    allow_delete = True

    list_display = (
        "incident",
        "source",
        "service",
        "group_key",
        "opened_at",
        "last_alert_at",
        "runbook_requested_at",
        "refresh_wanted_at",
        "cleared_at",
    )
    list_select_related = ("incident", "source")
