"""Admin: the approval queue, where approvers decide on action requests.

The admin stays thin: every decision calls executor.services, which holds the rules
(permission, four eyes, expiry, exactly-once). Nothing here assigns a status.
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince, timeuntil

from incidents.admin.mixins import ReadOnlyAdmin, ReadOnlyInline
from incidents.choices import severity_info

from .. import policy, selectors, services
from ..choices import ActionStatus
from ..models import ActionRequest, Approval
from ..policy import APPROVE_PERMISSION

# The admin index shows how many requests wait for a decision.
admin.site.index_template = "admin/executor/index.html"

PLAN_LINES_IN_LIST = 8


class ApprovalInline(ReadOnlyInline, admin.TabularInline):
    model = Approval
    fields = ("decided_at", "approver", "decision", "reason")
    readonly_fields = fields


class QueueStatusFilter(admin.SimpleListFilter):
    """Status, defaulting to what waits for a decision; `all` shows everything."""

    title = "status"
    parameter_name = "status"
    default = ActionStatus.AWAITING_APPROVAL

    def lookups(self, request, model_admin):
        return [("all", "All"), *ActionStatus.choices]

    def value(self) -> str:
        return super().value() or self.default

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() == "all":
            return queryset
        return queryset.filter(status=self.value())

    def choices(self, changelist):
        # No "All" that drops the parameter: dropping it means the default, the pending ones.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


def _pre(text: str, css: str = "queue-pre") -> str:
    return format_html('<pre class="{}">{}</pre>', css, text)


def _params_text(params: dict) -> str:
    if not params:
        return "(none)"
    return "\n".join(
        f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(params.items())
    )


@admin.register(ActionRequest)
class ActionRequestAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "severity_badge",
        "incident_link",
        "action_and_target",
        "params_display",
        "plan_short",
        "why",
        "asked_by",
        "waited",
        "expires_in",
        "status_display",
    )
    list_display_links = ("action_and_target",)
    list_filter = (
        QueueStatusFilter,
        "incident__severity",
        "incident__service",
        "action",
    )
    search_fields = (
        "action",
        "step_id",
        "target",
        "incident__title",
        "incident__service",
        "requested_by__username",
        "approval_reason",
    )
    ordering = selectors.QUEUE_ORDERING
    list_per_page = 50
    actions = ["approve_selected", "reject_selected"]
    inlines = [ApprovalInline]
    fieldsets = (
        (
            "Decision",
            {
                "fields": (
                    "status_display",
                    "why",
                    "approvals_progress",
                    "asked_by",
                    "requested_at",
                    "waited",
                    "expires_in",
                )
            },
        ),
        (
            "What would run",
            {
                "fields": (
                    "incident_link",
                    "runbook",
                    "step_id",
                    "action",
                    "target",
                    "pinned_target",
                    "safety",
                    "runbook_marked_safe",
                    "params_full",
                    "plan_full",
                    "rationale",
                )
            },
        ),
        (
            "Result",
            {"fields": ("started_at", "finished_at", "duration_ms", "error", "result_full")},
        ),
    )
    # Every field shown is read-only.
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    # --- permissions: the queue is read-only; decisions go through the services ----

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Annotated with approvals_given, which the columns below read.
        return selectors.approval_queue(status=None)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    # --- columns ----------------------------------------------------------------

    @admin.display(description="Sev", ordering="incident__severity")
    def severity_badge(self, obj: ActionRequest) -> str:
        sev = obj.incident.severity
        return format_html(
            '<span class="sev-badge" style="background:{}">{}</span>',
            severity_info(sev).colour,
            sev,
        )

    @admin.display(description="Incident", ordering="incident__detected_at")
    def incident_link(self, obj: ActionRequest) -> str:
        incident = obj.incident
        url = reverse("admin:incidents_incident_change", args=[incident.pk])
        service = f" · {incident.service}" if incident.service else ""
        return format_html('<a href="{}">#{} {}</a>{}', url, incident.pk, incident.title, service)

    @admin.display(description="Action → target", ordering="action")
    def action_and_target(self, obj: ActionRequest) -> str:
        return format_html(
            "<strong>{}</strong><br><code>{}</code> → <code>{}</code>{}",
            obj.step_id,
            obj.action,
            obj.target or "(none)",
            self.pinned_target(obj) if obj.target_kind else "",
        )

    @admin.display(description="Target as planned")
    def pinned_target(self, obj: ActionRequest) -> str:
        """Where the approval sends it: the kind and URL (secrets taken out) of the plan."""
        if not obj.target_kind:
            return "—"
        return format_html(
            '<br><span class="queue-target">{} · <code>{}</code></span>',
            obj.target_kind,
            obj.target_url or "(no URL)",
        )

    @admin.display(description="Params")
    def params_display(self, obj: ActionRequest) -> str:
        return _pre(_params_text(obj.params))

    @admin.display(description="Params")
    def params_full(self, obj: ActionRequest) -> str:
        return _pre(json.dumps(obj.params, indent=2, sort_keys=True))

    @admin.display(description="Dry-run plan")
    def plan_short(self, obj: ActionRequest) -> str:
        lines = (obj.plan or "(no plan)").splitlines()
        more = len(lines) - PLAN_LINES_IN_LIST
        text = "\n".join(lines[:PLAN_LINES_IN_LIST]) + (
            f"\n… {more} more lines" if more > 0 else ""
        )
        return _pre(text, "queue-pre queue-plan")

    @admin.display(description="Dry-run plan")
    def plan_full(self, obj: ActionRequest) -> str:
        return _pre(obj.plan or "(no plan)", "queue-pre queue-plan")

    @admin.display(description="Why approval", ordering="safety")
    def why(self, obj: ActionRequest) -> str:
        return obj.approval_reason or "—"

    @admin.display(description="Asked by", ordering="requested_by__username")
    def asked_by(self, obj: ActionRequest) -> str:
        return obj.requester_label

    @admin.display(description="Waited", ordering="requested_at")
    def waited(self, obj: ActionRequest) -> str:
        if not obj.requested_at:
            return "—"
        end = obj.finished_at if obj.status != ActionStatus.AWAITING_APPROVAL else None
        return timesince(obj.requested_at, end or timezone.now())

    @admin.display(description="Expires in", ordering="expires_at")
    def expires_in(self, obj: ActionRequest) -> str:
        if obj.status == ActionStatus.EXPIRED:
            return format_html('<span class="queue-expired">{}</span>', "expired")
        if obj.status != ActionStatus.AWAITING_APPROVAL or not obj.expires_at:
            return "—"
        if obj.expires_at <= timezone.now():
            return format_html('<span class="queue-expired">{}</span>', "expired, not yet swept")
        return timeuntil(obj.expires_at)

    @admin.display(description="Approvals")
    def approvals_progress(self, obj: ActionRequest) -> str:
        return f"{obj.approvals_given} of {policy.approvals_required(obj)} needed"

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj: ActionRequest) -> str:
        label = obj.get_status_display()
        if obj.status == ActionStatus.AWAITING_APPROVAL:
            needed = policy.approvals_required(obj)
            if needed > 1:
                label += f" ({obj.approvals_given}/{needed})"
        return format_html(
            '<span class="queue-status queue-status-{}">{}</span>', obj.status, label
        )

    @admin.display(description="Result")
    def result_full(self, obj: ActionRequest) -> str:
        if not obj.result:
            return "—"
        summary = obj.result.get("summary", "")
        output = obj.result.get("output", "")
        return format_html_join(
            "",
            "{}",
            [(_pre(part),) for part in (summary, output) if part],
        )

    # --- decisions ----------------------------------------------------------------

    def _decide_each(
        self, request: HttpRequest, queryset: QuerySet, verb: str, **kwargs: Any
    ) -> None:
        service = {
            "approve": services.action_request_approve,
            "reject": services.action_request_reject,
        }[verb]
        done: list[str] = []
        for action_request in queryset:
            try:
                service(action_request=action_request, approver=request.user, **kwargs)
            except services.ExecutorError as exc:
                self.message_user(
                    request,
                    f"#{action_request.pk} {action_request.step_id}: {exc}",
                    messages.ERROR,
                )
            else:
                done.append(f"#{action_request.pk} {action_request.step_id}")
        if done:
            past = "Approved" if verb == "approve" else "Rejected"
            self.message_user(request, f"{past}: {', '.join(done)}", messages.SUCCESS)

    @admin.action(description="Approve selected requests", permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide_each(request, queryset, "approve")

    @admin.action(description="Reject selected requests…", permissions=["approve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        reason = (request.POST.get("reason") or "").strip()
        if request.POST.get("confirm") and reason:
            self._decide_each(request, queryset, "reject", reason=reason)
            return None
        # An intermediate page: a rejection needs a reason.
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject action requests",
            "opts": self.model._meta,
            "queryset": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "missing_reason": bool(request.POST.get("confirm")) and not reason,
            "reason": reason,
        }
        return TemplateResponse(
            request, "admin/executor/actionrequest/reject_confirmation.html", context
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="executor_actionrequest_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The buttons of the detail page: approve, reject (with reason), ask again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action_request = self.get_object(request, object_id)  # None for a malformed id
        if action_request is None:
            raise Http404("No such action request")
        if not self.has_view_permission(request, action_request):
            return HttpResponseRedirect(reverse("admin:index"))
        decision = request.POST.get("decision", "")
        reason = request.POST.get("reason", "")
        try:
            if decision == "approve":
                done = services.action_request_approve(
                    action_request=action_request, approver=request.user, reason=reason
                )
                text = f"Approved. The request is now {done.get_status_display().lower()}."
            elif decision == "reject":
                services.action_request_reject(
                    action_request=action_request, approver=request.user, reason=reason
                )
                text = "Rejected. The action will not run."
            elif decision == "reask":
                services.action_request_reask(
                    action_request=action_request, actor=request.user, reason=reason
                )
                text = (
                    "Asked again: the dry-run was made afresh and the request waits for approval."
                )
            else:
                raise services.ExecutorError("Unknown decision.")
        except services.ExecutorError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:executor_actionrequest_change", args=[action_request.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            can_approve = self.has_approve_permission(request)
            extra.update(
                decide_url=reverse("admin:executor_actionrequest_decide", args=[obj.pk]),
                can_decide=can_approve and obj.status == ActionStatus.AWAITING_APPROVAL,
                own_request=policy.is_requester(request.user, obj),
                can_reask=obj.status == ActionStatus.EXPIRED,
                queue_obj=obj,
                queue_plan=obj.plan,
                queue_why=obj.approval_reason,
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)
