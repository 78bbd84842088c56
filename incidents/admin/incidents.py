"""Admin for incidents and their append-only timeline."""

from django.contrib import admin

from ..choices import ROLE_FIELDS
from ..event_text import event_text
from ..models import Incident, TimelineEvent
from .alerts import AlertInline
from .mixins import ChosenOnlyRelatedFilter, NewestRowsInline, ReadOnlyAdmin


class TimelineInline(NewestRowsInline, admin.TabularInline):
    """The incident's newest timeline rows, linking to all of them."""

    model = TimelineEvent
    fields = ("created_at", "kind", "who", "text")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    show_change_link = False

    def get_queryset(self, request):
        # "who" reads the actor: one join instead of a query per row.
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="message")
    def text(self, event: TimelineEvent) -> str:
        return event_text(event)


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
        *ROLE_FIELDS,
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
class TimelineEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("created_at", "incident", "kind", "who", "text")
    list_filter = (("incident", ChosenOnlyRelatedFilter), "kind")
    search_fields = ("message",)
    list_select_related = ("incident", "actor")
    # The list is mostly seen filtered to one incident: no COUNT of every incident's rows.
    show_full_result_count = False

    @admin.display(description="message")
    def text(self, event: TimelineEvent) -> str:
        return event_text(event)
