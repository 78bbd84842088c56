from django.contrib import admin

from .models import ActionRequest, Approval, CheckRun, Execution


class CheckRunInline(admin.TabularInline):
    model = CheckRun
    fields = ("position", "check_id", "action", "target", "outcome", "summary", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "runbook", "trigger", "status", "started_at", "finished_at")
    list_filter = ("status", "trigger")
    list_select_related = ("runbook", "runbook__incident")
    inlines = [CheckRunInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class ApprovalInline(admin.TabularInline):
    model = Approval
    fields = ("decided_at", "approver", "decision", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ActionRequest)
class ActionRequestAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "incident",
        "action_id",
        "action",
        "safety",
        "status",
        "requested_at",
        "expires_at",
    )
    list_filter = ("status", "safety", "action")
    search_fields = ("action", "action_id", "incident__title")
    list_select_related = ("incident",)
    inlines = [ApprovalInline]

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through executor.services, never by editing the row.
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ("decided_at", "action_request", "approver", "decision", "reason")
    list_filter = ("decision",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
