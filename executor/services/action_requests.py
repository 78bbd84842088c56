"""Action requests: propose a runbook's actions with their dry-runs, run a safe one on a
click, and execute a queued one exactly once on the worker.

Every status change goes through `action_move`, a conditional UPDATE along the table.
"""

import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.events import actions_proposed_event
from incidents.storable import clean_text
from runbooks.models import Runbook

from ..changes import record_action_change
from ..choices import ActionStatus, CheckOutcome, Safety, StepKind
from ..engine import PreparedStep, prepare_step, run_step
from ..models import ActionRequest
from ..policy import approval_reason, approval_ttl, is_stricter, safe_mode_refusal
from ..targets import TargetScope, labelled, target_scope
from .common import ExecutorError, action_move, queue_action_run, record_status
from .pinning import pin_change, pin_of


def dry_run_plan(prepared: PreparedStep) -> str:
    """The plan of a runnable step, bounded; a plan that cannot be made is shown as such."""
    try:
        plan = prepared.spec.plan(prepared.params, prepared.target)
    except Exception as exc:
        plan = f"(no dry-run plan: {type(exc).__name__}: {exc})"
    plan = clean_text(labelled(prepared.target, str(plan)))  # target text, stored as is
    return plan[: settings.EXECUTOR_OUTPUT_LIMIT]


def pinned_params(request: ActionRequest) -> dict:
    """The request's params naming the target its plan was made for, never one chosen afresh."""
    return {**request.params, "target": request.target} if request.target else request.params


def prepare_request(request: ActionRequest, params: dict) -> PreparedStep:
    """A stored request's step through the boundary's checks again (registry, params, target)."""
    return prepare_step(
        step={"id": request.step_id, "action": request.action, "params": params},
        position=0,
        kind=StepKind.ACTION,
        service=request.incident.service,
    )


def action_requests_plan(
    *, runbook: Runbook, document: dict, scope: TargetScope | None = None
) -> list[ActionRequest]:
    """Unsaved requests, one per recommended action, each with its dry-run plan.

    Plans may read the targets: make them outside any transaction, then store them
    with `action_requests_store`.
    """
    incident = runbook.incident
    scope = scope or target_scope(incident.service)
    planned: list[ActionRequest] = []
    now = timezone.now()
    # Generation goes on in safe mode, but nothing it proposes is offered to run.
    safe_mode = safe_mode_refusal(Safety.DESTRUCTIVE)
    # The human behind the proposal: who asked for this version, else who declared it.
    caused_by_id = runbook.requested_by_id or incident.created_by_id
    for i, step in enumerate(document["recommended_actions"]):
        prepared = prepare_step(step=step, position=i, kind=StepKind.ACTION, scope=scope)
        spec = prepared.spec
        marked_safe = step.get("safe") is True
        safety = spec.safety if spec else ""
        if not prepared.blocked and safe_mode and safe_mode_refusal(safety):
            prepared.blocked = f"not offered to run: {safe_mode}"
        if prepared.blocked:
            status, reason, plan = ActionStatus.BLOCKED, "", ""
        else:
            reason = approval_reason(safety, marked_safe)
            status = ActionStatus.AWAITING_APPROVAL if reason else ActionStatus.PROPOSED
            plan = dry_run_plan(prepared)
        planned.append(
            ActionRequest(
                runbook=runbook,
                incident=incident,
                step_id=prepared.step_id,
                action=prepared.action,
                params=prepared.params,
                target=prepared.target.name if prepared.target else "",
                **pin_of(prepared.target).fields(),
                safety=safety,
                runbook_marked_safe=marked_safe,
                rationale=str(step.get("rationale", ""))[:2000],
                approval_reason=reason,
                status=status,
                plan=plan,
                error=prepared.blocked,
                caused_by_id=caused_by_id,
                requested_at=now if status == ActionStatus.AWAITING_APPROVAL else None,
                expires_at=(now + approval_ttl(incident.severity))
                if status == ActionStatus.AWAITING_APPROVAL
                else None,
            )
        )
    return planned


def action_requests_store(
    *, runbook: Runbook, planned: list[ActionRequest], bulk: bool = True
) -> list[ActionRequest]:
    """Store planned requests and announce them; idempotent per runbook and step.

    With `bulk`, one INSERT for all of them, and an IntegrityError if some were proposed
    already (a redelivered task): the caller's transaction is then lost, and the caller
    tries again without `bulk`, where each is stored on its own and the ones that exist
    are left out.
    """
    if not planned:
        return []
    if bulk:
        created = ActionRequest.objects.bulk_create(planned)
    else:
        created = []
        for request in planned:
            try:
                with transaction.atomic():
                    request.pk = None
                    request.save(force_insert=True)
            except IntegrityError:
                continue  # already proposed for this runbook
            created.append(request)
    action_requests_announce(runbook=runbook, created=created)
    return created


def action_requests_announce(*, runbook: Runbook, created: list[ActionRequest]) -> None:
    """The timeline event naming the requests just stored (each with its id)."""
    if created:
        actions_proposed_event(
            incident=runbook.incident,
            runbook_id=runbook.pk,
            actions=[
                {
                    "id": r.pk,
                    "step_id": r.step_id,
                    "action": r.action,
                    "status": r.status,
                    "reason": r.approval_reason or r.error,
                }
                for r in created
            ],
        )


def action_requests_create(
    *, runbook: Runbook, document: dict, scope: TargetScope | None = None
) -> list[ActionRequest]:
    """One request per recommended action, with its dry-run plan; idempotent per runbook."""
    planned = action_requests_plan(runbook=runbook, document=document, scope=scope)
    try:
        with transaction.atomic():
            return action_requests_store(runbook=runbook, planned=planned)
    except IntegrityError:
        return action_requests_store(runbook=runbook, planned=planned, bulk=False)


def action_request_run(*, action_request: ActionRequest, actor: Any = None) -> ActionRequest:
    """A responder runs a safe action: proposed → running, executed once on the worker."""
    with transaction.atomic():
        request = ActionRequest.objects.select_for_update().get(pk=action_request.pk)
        if request.status == ActionStatus.AWAITING_APPROVAL:
            raise ExecutorError("This action needs approval before it can run.")
        if request.status != ActionStatus.PROPOSED:
            raise ExecutorError(
                f"This action is {request.get_status_display().lower()}; it cannot be run now."
            )
        why = approval_reason(request.safety, request.runbook_marked_safe)
        if why:
            # The click asked for it: whoever clicked is its requester and cannot approve it.
            if not action_move(
                request,
                ActionStatus.AWAITING_APPROVAL,
                from_statuses=[ActionStatus.PROPOSED],
                approval_reason=why,
                requested_by=actor if getattr(actor, "is_authenticated", False) else None,
                requested_at=timezone.now(),
                expires_at=timezone.now() + approval_ttl(request.incident.severity),
            ):
                raise ExecutorError("Someone else changed this action meanwhile.")
            record_status(request, "needs_approval", actor, reason=why)
            request.refresh_from_db()
            return request
        if not action_move(
            request,
            ActionStatus.RUNNING,
            from_statuses=[ActionStatus.PROPOSED],
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            requested_at=timezone.now(),
        ):
            raise ExecutorError("Someone else started this action meanwhile.")
        record_status(request, "started", actor)
        transaction.on_commit(lambda: queue_action_run(request.pk))
    request.refresh_from_db()
    return request


def action_request_execute(*, action_request_id: int) -> ActionRequest:
    """Worker side: run the action at most once, whatever retries or redeliveries happen."""
    # The claim: only the caller that sets started_at runs the action.
    claimed = ActionRequest.objects.filter(
        pk=action_request_id, status=ActionStatus.RUNNING, started_at__isnull=True
    ).update(started_at=timezone.now())
    request = ActionRequest.objects.select_related("incident").get(pk=action_request_id)
    if not claimed:
        return request
    # Run against the target the plan named, never one chosen afresh after approval.
    prepared = prepare_request(request, pinned_params(request))
    changed = "" if prepared.blocked else pin_change(request, prepared.target)
    if changed:
        # Approved (or clicked) for the target as planned: never act somewhere else.
        prepared.blocked = f"{changed}; not run: ask for it again"
    elif prepared.spec and is_stricter(prepared.spec.safety, request.safety):
        prepared.blocked = (
            f"the registry now classes {request.action} as {prepared.spec.safety}, stricter "
            f"than the {request.safety or 'unknown'} it was proposed as; ask for approval again"
        )
    # Checked when the run starts, not when it was approved: safe mode stops queued runs too.
    if refusal := safe_mode_refusal(request.safety):
        prepared.blocked = f"refused: {refusal}"
    started = time.monotonic()
    outcome = run_step(prepared, timeout=settings.EXECUTOR_ACTION_TIMEOUT)
    succeeded = outcome.outcome in (CheckOutcome.OK, CheckOutcome.WARN)
    result = {
        "outcome": outcome.outcome,
        "summary": outcome.summary,
        "output": outcome.output,
        "data": outcome.data,
    }
    with transaction.atomic():
        recorded = action_move(
            request,
            ActionStatus.SUCCEEDED if succeeded else ActionStatus.FAILED,
            from_statuses=[ActionStatus.RUNNING],
            result=result,
            error="" if succeeded else outcome.summary,
            finished_at=timezone.now(),
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        # If the sweeper already gave it up as lost, the event says the outcome came late.
        record_status(
            request,
            "finished",
            succeeded=succeeded,
            late=not recorded,
            summary=outcome.summary,
            outcome=outcome.outcome,
        )
        if recorded and not prepared.blocked:
            record_action_change(request, succeeded=succeeded)
    request.refresh_from_db()
    return request
