"""Approvals: approve, reject, expire and ask again, with the rule of executor.policy.

The row lock serialises concurrent approvers; the conditional UPDATE of each move
decides the one caller that makes it, whatever the database.
"""

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from incidents.events import approval_decision_event

from .. import decision_notices
from ..choices import ActionStatus, Decision
from ..models import ActionRequest, Approval
from ..policy import (
    approval_reason,
    approval_ttl,
    approvals_required,
    current_approvals,
    is_approver,
    may_approve,
)
from .action_requests import dry_run_plan, pinned_params, prepare_request
from .common import ExecutorError, action_move, queue_action_run, record_status
from .pinning import pin_change, pin_of


def _locked(action_request: ActionRequest) -> ActionRequest:
    """The request re-read under a lock on its own row, inside the caller's transaction.

    Only the incident is joined: the rules read its severity; notifications load their own.
    """
    return (
        ActionRequest.objects.select_for_update(of=("self",))
        .select_related("incident")
        .get(pk=action_request.pk)
    )


def _after_decision(
    request: ActionRequest, event: str, actor: Any, reason: str = "", **progress: int
) -> None:
    """Tell the requester and the incident's channel, once the decision is committed.
    `progress` (given, needed) is the count as of this decision, not as of the post."""
    payload = {
        "action_request_id": request.pk,
        "event": event,
        "actor": actor.get_username() if actor else "executor",
        "reason": reason[:500],
        **progress,
    }
    transaction.on_commit(lambda: decision_notices.decision_notify_queue(**payload), robust=True)


def action_request_approve(
    *, action_request: ActionRequest, approver: Any, reason: str = ""
) -> ActionRequest:
    """Record an approval; with enough of them the action is queued to run exactly once.

    The row lock serialises concurrent approvers; the conditional UPDATE to `approved`
    decides the one caller that queues the run, whatever the database.
    """
    if not is_approver(approver):
        raise ExecutorError("You do not have permission to approve actions.")
    reason = (reason or "").strip()
    queued = False
    _refuse_if_target_moved(action_request, approver)
    with transaction.atomic():
        request = _locked(action_request)
        if request.status == ActionStatus.EXPIRED or (
            request.status == ActionStatus.AWAITING_APPROVAL
            and request.expires_at
            and request.expires_at <= timezone.now()
        ):
            raise ExecutorError("This request has expired; ask for approval again.")
        if request.status != ActionStatus.AWAITING_APPROVAL:
            raise ExecutorError(
                f"This request is {request.get_status_display().lower()}; it cannot be approved."
            )
        if not may_approve(approver, request):  # four eyes
            raise ExecutorError("You asked for this action; someone else must approve it.")
        if current_approvals(request).filter(approver=approver).exists():
            raise ExecutorError(
                "You have already approved this request; it needs another approver."
            )
        try:
            with transaction.atomic():
                Approval.objects.create(
                    action_request=request,
                    approver=approver,
                    decision=Decision.APPROVE,
                    reason=reason[:2000],
                    round=request.approval_round,
                )
        except IntegrityError as exc:  # a double submit that slipped past the lock (SQLite)
            raise ExecutorError("You have already approved this request.") from exc
        given = current_approvals(request).count()
        needed = approvals_required(request)
        approval_decision_event(
            incident=request.incident_id,
            approver=approver,
            action_request_id=request.pk,
            step_id=request.step_id,
            action=request.action,
            decision=Decision.APPROVE,
            reason=reason,
            approvals=given,
            required=needed,
        )
        if given >= needed and action_move(
            request, ActionStatus.APPROVED, from_statuses=[ActionStatus.AWAITING_APPROVAL]
        ):
            # approved → running in the same transaction: the worker's claim needs `running`.
            action_move(request, ActionStatus.RUNNING, from_statuses=[ActionStatus.APPROVED])
            record_status(request, "queued", approver)
            transaction.on_commit(lambda: queue_action_run(request.pk))
            queued = True
        _after_decision(
            request,
            "approved" if queued else "approval_recorded",
            approver,
            reason=reason,
            given=given,
            needed=needed,
        )
    request.refresh_from_db()
    return request


def _refuse_if_target_moved(action_request: ActionRequest, approver: Any) -> None:
    """Before an approval counts, the target must be the one the plan showed. If it was
    re-pointed, the request is asked again (committed) and this approval refused.

    Only an approver who may decide triggers it; other refusals are the caller's to give.
    """
    with transaction.atomic():
        request = _locked(action_request)
        if (
            request.status != ActionStatus.AWAITING_APPROVAL
            or (request.expires_at and request.expires_at <= timezone.now())
            or not may_approve(approver, request)
        ):
            return
        refusal = _target_moved(request, approver)
    if refusal:
        raise ExecutorError(refusal)


def _target_moved(request: ActionRequest, actor: Any) -> str:
    """If the target was re-pointed since the plan, ask again with a fresh dry-run (or block
    it when it no longer resolves) and say why; "" when it is the target the approver saw."""
    prepared = prepare_request(request, pinned_params(request))
    changed = pin_change(request, None if prepared.blocked else prepared.target)
    if not changed:
        return ""
    now = timezone.now()
    if prepared.blocked:
        action_move(
            request,
            ActionStatus.BLOCKED,
            from_statuses=[ActionStatus.AWAITING_APPROVAL],
            error=f"{changed}: {prepared.blocked}"[:4000],
            finished_at=now,
        )
        record_status(request, "blocked", reason=changed)
        return f"Not approved: {changed} ({prepared.blocked}); the request is blocked."
    # Same status, a new round: approvals given for the old target no longer count.
    ActionRequest.objects.filter(pk=request.pk, status=ActionStatus.AWAITING_APPROVAL).update(
        plan=dry_run_plan(prepared),
        **pin_of(prepared.target).fields(),
        approval_round=F("approval_round") + 1,
        requested_at=now,
        expires_at=now + approval_ttl(request.incident.severity),
        updated_at=now,
    )
    record_status(request, "target_changed", actor, reason=changed)
    return (
        f"Not approved: {changed}. The dry-run was made afresh for the target as it is now; "
        "review it and approve again."
    )


def action_request_reject(
    *, action_request: ActionRequest, approver: Any, reason: str
) -> ActionRequest:
    """A final no, with the reason recorded; the action never runs."""
    if not is_approver(approver):
        raise ExecutorError("You do not have permission to reject actions.")
    reason = (reason or "").strip()
    if not reason:
        raise ExecutorError("Say why you reject it: a reason is required.")
    with transaction.atomic():
        request = _locked(action_request)
        if request.status != ActionStatus.AWAITING_APPROVAL:
            raise ExecutorError(
                f"This request is {request.get_status_display().lower()}; it cannot be rejected."
            )
        if request.approvals.filter(approver=approver, round=request.approval_round).exists():
            raise ExecutorError(
                "You already decided on this request; one decision per person is recorded."
            )
        if not action_move(
            request, ActionStatus.REJECTED, from_statuses=[ActionStatus.AWAITING_APPROVAL]
        ):
            raise ExecutorError("This request changed meanwhile; reload it.")
        Approval.objects.create(
            action_request=request,
            approver=approver,
            decision=Decision.REJECT,
            reason=reason[:2000],
            round=request.approval_round,
        )
        approval_decision_event(
            incident=request.incident_id,
            approver=approver,
            action_request_id=request.pk,
            step_id=request.step_id,
            action=request.action,
            decision=Decision.REJECT,
            reason=reason,
        )
        _after_decision(request, "rejected", approver, reason=reason)
    request.refresh_from_db()
    return request


def action_requests_expire(*, now: datetime | None = None) -> int:
    """Pending requests past their expiry become expired; returns how many."""
    now = now or timezone.now()
    expired = 0
    # Only ids and names are read here; the notification task loads what it shows.
    for request in ActionRequest.objects.filter(
        status=ActionStatus.AWAITING_APPROVAL, expires_at__lte=now
    ):
        with transaction.atomic():
            if action_move(
                request,
                ActionStatus.EXPIRED,
                from_statuses=[ActionStatus.AWAITING_APPROVAL],
                finished_at=now,
            ):
                expired += 1
                record_status(request, "expired")
                _after_decision(request, "expired", None)
    return expired


def action_request_reask(
    *, action_request: ActionRequest, actor: Any, reason: str = ""
) -> ActionRequest:
    """Ask again for an expired request: the dry-run is made afresh, the clock restarts.

    The world may have moved on since the first plan, so the step goes through the
    boundary's checks again (registry, params, target) before anyone is asked.
    """
    if not getattr(actor, "is_authenticated", False):
        raise ExecutorError("Sign in to ask for approval.")
    with transaction.atomic():
        request = _locked(action_request)
        if request.status != ActionStatus.EXPIRED:
            raise ExecutorError(
                f"This request is {request.get_status_display().lower()}; "
                "only an expired request can be asked for again."
            )
        prepared = prepare_request(request, request.params)
        if prepared.blocked or prepared.spec is None:
            raise ExecutorError(f"It cannot be asked for again: {prepared.blocked}")
        why = approval_reason(prepared.spec.safety, request.runbook_marked_safe)
        now = timezone.now()
        if not action_move(
            request,
            ActionStatus.AWAITING_APPROVAL,
            from_statuses=[ActionStatus.EXPIRED],
            plan=dry_run_plan(prepared),
            target=prepared.target.name if prepared.target else "",
            **pin_of(prepared.target).fields(),
            safety=prepared.spec.safety,
            approval_reason=why or "asked again after an expired approval request",
            requested_by=actor,
            requested_at=now,
            approval_round=F("approval_round") + 1,
            expires_at=now + approval_ttl(request.incident.severity),
            finished_at=None,
            error="",
        ):
            raise ExecutorError("This request changed meanwhile; reload it.")
        record_status(
            request, "reasked", actor, actor_name=actor.get_username(), reason=reason[:300]
        )
    request.refresh_from_db()
    return request
