"""Admin for what the executor recorded: executions with their check runs, and approvals.

The services write these rows once; here they can only be read (executions may be deleted).
"""

from django.contrib import admin

from incidents.admin.mixins import ReadOnlyAdmin, ReadOnlyInline

from ..models import Approval, CheckRun, Execution


class CheckRunInline(ReadOnlyInline, admin.TabularInline):
    model = CheckRun
    fields = ("position", "check_id", "action", "target", "outcome", "summary", "duration_ms")
    readonly_fields = fields


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    allow_delete = True
    list_display = ("id", "runbook", "trigger", "status", "started_at", "finished_at")
    list_filter = ("status", "trigger")
    list_select_related = ("runbook", "runbook__incident")
    inlines = [CheckRunInline]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Decisions are written once by the services; here they can only be read."""

    list_display = ("decided_at", "action_request", "approver", "decision", "reason")
    list_filter = ("decision",)
    list_select_related = ("action_request", "approver")
    search_fields = ("reason", "approver__username", "action_request__step_id")
    readonly_fields = ("action_request", "approver", "decision", "reason", "decided_at")
