"""Verbs for executions and action requests. Views, admin, tasks and commands call these.

Every status change of an action request goes through `_transition`, a
conditional UPDATE, so two approvers or two workers can never make the same move.
"""

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from incidents.choices import TimelineKind
from incidents.events import timeline_record
from runbooks.artifacts import ArtifactMissing, ArtifactTampered, artifact_load
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from runbooks.validation import validate_runbook

from . import notify  # also registers the notification task wherever services load
from .choices import (
    ACTION_TRANSITIONS,
    ActionStatus,
    CheckOutcome,
    Decision,
    ExecutionStatus,
    Safety,
    StepKind,
)
from .engine import PreparedStep, prepare_step, run_checks, run_step
from .models import ActionRequest, Approval, CheckRun, Execution
from .targets import TargetScope, target_scope


class ExecutorError(Exception):
    """A request the rules refuse; the message is meant for the person who asked."""


# --- executions ----------------------------------------------------------------


def _load_verified(runbook: Runbook) -> dict:
    """The artifact as stored, refused if tampered with or no longer valid."""
    if runbook.status != RunbookStatus.READY or not runbook.artifact_key:
        raise ExecutorError(f"runbook v{runbook.version} is {runbook.status}, not ready")
    try:
        document = artifact_load(key=runbook.artifact_key, expected_sha256=runbook.artifact_sha256)
    except (ArtifactTampered, ArtifactMissing) as exc:
        raise ExecutorError(str(exc)) from exc
    issues = validate_runbook(document)
    if issues:
        raise ExecutorError(
            "stored artifact fails the contract: " + "; ".join(str(i) for i in issues[:5])
        )
    return document


def _record_execution(
    execution: Execution, runbook: Runbook, kind: str, message: str, actor: Any = None, **extra: Any
) -> None:
    """One timeline event about an execution, naming its runbook and execution."""
    timeline_record(
        incident=runbook.incident_id,
        kind=kind,
        actor=actor,
        actor_label="executor",
        message=message,
        payload={"runbook_id": runbook.pk, "execution_id": execution.pk, **extra},
    )


def execution_run(*, runbook_id: int, trigger: str = "pipeline", actor: Any = None) -> Execution:
    """Re-verify the stored runbook, run its checks, and (first run) propose its actions.

    Whatever goes wrong, the execution ends as refused, done or failed, never running.
    """
    runbook = Runbook.objects.select_related("incident").get(pk=runbook_id)
    execution = Execution.objects.create(runbook=runbook, trigger=trigger)
    try:
        return _execute(execution=execution, runbook=runbook, trigger=trigger, actor=actor)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        execution_mark_failed(execution_id=execution.pk, error=error)
        _record_execution(
            execution,
            runbook,
            TimelineKind.EXECUTION_REFUSED,
            f"Checks of runbook v{runbook.version} failed: {error[:300]}",
        )
        raise


def _execute(*, execution: Execution, runbook: Runbook, trigger: str, actor: Any) -> Execution:
    try:
        document = _load_verified(runbook)
    except ExecutorError as exc:
        with transaction.atomic():
            Execution.objects.filter(pk=execution.pk).update(
                status=ExecutionStatus.REFUSED, error=str(exc), finished_at=timezone.now()
            )
            _record_execution(
                execution,
                runbook,
                TimelineKind.EXECUTION_REFUSED,
                f"Refused to run runbook v{runbook.version}: {exc}",
                actor,
            )
        execution.refresh_from_db()
        return execution

    _record_execution(
        execution,
        runbook,
        TimelineKind.CHECKS_STARTED,
        f"Running {len(document['checks'])} checks of runbook v{runbook.version} ({trigger})",
        actor,
    )
    scope = target_scope(runbook.incident.service)
    steps = [
        prepare_step(step=step, position=i, kind=StepKind.CHECK, scope=scope)
        for i, step in enumerate(document["checks"])
    ]
    outcomes = run_checks(steps)
    with transaction.atomic():
        CheckRun.objects.bulk_create(
            [
                CheckRun(
                    execution=execution,
                    check_id=o.step.step_id,
                    action=o.step.action,
                    params=o.step.params,
                    target=o.step.target.name if o.step.target else "",
                    outcome=o.outcome,
                    summary=o.summary,
                    output=o.output,
                    data=o.data,
                    duration_ms=o.duration_ms,
                    position=o.step.position,
                )
                for o in outcomes
            ]
        )
        Execution.objects.filter(pk=execution.pk).update(
            status=ExecutionStatus.DONE, finished_at=timezone.now()
        )
        counts = dict(Counter(o.outcome for o in outcomes))
        _record_execution(
            execution,
            runbook,
            TimelineKind.CHECKS_DONE,
            "Checks done: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"),
            actor,
            counts=counts,
        )
    if trigger == "pipeline":
        # Dry-run plans may read the targets: outside the transaction, holding no lock.
        action_requests_create(runbook=runbook, document=document, scope=scope)
    execution.refresh_from_db()
    return execution


def execution_mark_failed(*, execution_id: int, error: str) -> None:
    Execution.objects.filter(pk=execution_id, status=ExecutionStatus.RUNNING).update(
        status=ExecutionStatus.FAILED, error=error[:4000], finished_at=timezone.now()
    )


# --- action requests ------------------------------------------------------------


_SAFETY_RANK = {Safety.READ_ONLY: 0, Safety.REVERSIBLE: 1, Safety.DESTRUCTIVE: 2}


def approval_reason(safety: str, marked_safe: bool) -> str:
    if safety == Safety.DESTRUCTIVE:
        return "destructive action: the registry always requires approval"
    if not marked_safe:
        return "the runbook marked this action unsafe"
    return ""


def _dry_run(prepared: PreparedStep) -> str:
    """The plan of a runnable step, bounded; a plan that cannot be made is shown as such."""
    try:
        plan = prepared.spec.plan(prepared.params, prepared.target)
    except Exception as exc:
        plan = f"(no dry-run plan: {type(exc).__name__}: {exc})"
    return str(plan)[: settings.EXECUTOR_OUTPUT_LIMIT]


def _prepare_request(request: ActionRequest, params: dict) -> PreparedStep:
    """A stored request's step through the boundary's checks again (registry, params, target)."""
    return prepare_step(
        step={"id": request.action_id, "action": request.action, "params": params},
        position=0,
        kind=StepKind.ACTION,
        service=request.incident.service,
    )


def action_requests_create(
    *, runbook: Runbook, document: dict, scope: TargetScope | None = None
) -> list[ActionRequest]:
    """One request per recommended action, with its dry-run plan; idempotent per runbook."""
    incident = runbook.incident
    scope = scope or target_scope(incident.service)
    created: list[ActionRequest] = []
    now = timezone.now()
    for i, step in enumerate(document["recommended_actions"]):
        prepared = prepare_step(step=step, position=i, kind=StepKind.ACTION, scope=scope)
        spec = prepared.spec
        marked_safe = step.get("safe") is True
        safety = spec.safety if spec else ""
        if prepared.blocked:
            status, reason, plan = ActionStatus.BLOCKED, "", ""
        else:
            reason = approval_reason(safety, marked_safe)
            status = ActionStatus.AWAITING_APPROVAL if reason else ActionStatus.PROPOSED
            plan = _dry_run(prepared)
        try:
            with transaction.atomic():
                request = ActionRequest.objects.create(
                    runbook=runbook,
                    incident=incident,
                    action_id=prepared.step_id,
                    action=prepared.action,
                    params=prepared.params,
                    target=prepared.target.name if prepared.target else "",
                    safety=safety,
                    runbook_marked_safe=marked_safe,
                    rationale=str(step.get("rationale", ""))[:2000],
                    approval_reason=reason,
                    status=status,
                    plan=plan,
                    error=prepared.blocked,
                    requested_at=now if status == ActionStatus.AWAITING_APPROVAL else None,
                    expires_at=(now + approval_ttl(incident.severity))
                    if status == ActionStatus.AWAITING_APPROVAL
                    else None,
                )
        except IntegrityError:
            continue  # already proposed for this runbook
        created.append(request)
    if created:
        by_status = Counter(r.status for r in created)
        timeline_record(
            incident=incident,
            kind=TimelineKind.ACTION_PROPOSED,
            actor_label="executor",
            message=f"{len(created)} action{'s' if len(created) != 1 else ''} proposed: "
            + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(by_status.items())),
            payload={
                "runbook_id": runbook.pk,
                "actions": [
                    {
                        "id": r.pk,
                        "action_id": r.action_id,
                        "action": r.action,
                        "status": r.status,
                        "reason": r.approval_reason or r.error,
                    }
                    for r in created
                ],
            },
        )
    return created


def approval_ttl(severity: str) -> timedelta:
    """How long a request may wait for a decision: APPROVAL_TTL_MINUTES by severity."""
    return timedelta(minutes=float(settings.APPROVAL_TTL_MINUTES.get(severity, 240)))


def _transition(
    request: ActionRequest, to_status: str, *, from_statuses: list[str], **fields: Any
) -> bool:
    """Apply a move of the transition table as a conditional UPDATE; True if this caller won."""
    # A move the table does not allow matches no row.
    sources = [s for s in from_statuses if to_status in ACTION_TRANSITIONS[s]]
    updated = ActionRequest.objects.filter(pk=request.pk, status__in=sources).update(
        status=to_status, updated_at=timezone.now(), **fields
    )
    return bool(updated)


def _record_status(request: ActionRequest, message: str, actor: Any = None, **payload: Any) -> None:
    timeline_record(
        incident=request.incident_id,
        kind=TimelineKind.ACTION_STATUS,
        actor=actor,
        actor_label="" if actor else "executor",
        message=message,
        payload={"action_request_id": request.pk, "action": request.action, **payload},
    )


def action_request_run(*, action_request: ActionRequest, actor: Any = None) -> ActionRequest:
    """A responder runs a safe action: proposed → running, executed once on the worker."""
    from .tasks import run_action_task

    with transaction.atomic():
        request = ActionRequest.objects.select_for_update().get(pk=action_request.pk)
        if request.status == ActionStatus.AWAITING_APPROVAL:
            raise ExecutorError("This action needs approval before it can run.")
        if request.status != ActionStatus.PROPOSED:
            raise ExecutorError(
                f"This action is {request.get_status_display().lower()}; it cannot be run now."
            )
        if approval_reason(request.safety, request.runbook_marked_safe):
            raise ExecutorError("This action needs approval before it can run.")
        if not _transition(
            request,
            ActionStatus.RUNNING,
            from_statuses=[ActionStatus.PROPOSED],
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            requested_at=timezone.now(),
        ):
            raise ExecutorError("Someone else started this action meanwhile.")
        _record_status(request, f"{request.action_id} ({request.action}) started", actor)
        transaction.on_commit(lambda: run_action_task.delay(request.pk))
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
    params = {**request.params, "target": request.target} if request.target else request.params
    prepared = _prepare_request(request, params)
    if prepared.spec and _SAFETY_RANK[prepared.spec.safety] > _SAFETY_RANK.get(request.safety, 0):
        prepared.blocked = (
            f"the registry now classes {request.action} as {prepared.spec.safety}, stricter "
            f"than the {request.safety or 'unknown'} it was proposed as; ask for approval again"
        )
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
        recorded = _transition(
            request,
            ActionStatus.SUCCEEDED if succeeded else ActionStatus.FAILED,
            from_statuses=[ActionStatus.RUNNING],
            result=result,
            error="" if succeeded else outcome.summary,
            finished_at=timezone.now(),
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        verb = "succeeded" if succeeded else "failed"
        # If the sweeper already gave it up as lost, say that the outcome came late.
        late = "" if recorded else " (after it had been marked lost; the request keeps that state)"
        _record_status(
            request,
            f"{request.action_id} ({request.action}) {verb}{late}: {outcome.summary}",
            outcome=outcome.outcome,
        )
    request.refresh_from_db()
    return request


# --- approvals -------------------------------------------------------------------


def _can_approve(user: Any) -> bool:
    return bool(
        user
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", True)
        and user.has_perm("executor.approve_actionrequest")
    )


def approvals_required(request: ActionRequest) -> int:
    """Destructive actions on SEV1/SEV2 may need more than one approver (four eyes and more)."""
    if request.safety == Safety.DESTRUCTIVE and request.incident.severity in ("SEV1", "SEV2"):
        return max(1, int(settings.APPROVALS_REQUIRED_DESTRUCTIVE))
    return 1


def _locked(action_request: ActionRequest) -> ActionRequest:
    """The request re-read under a lock on its own row, inside the caller's transaction.

    Only the incident is joined: the rules read its severity; notifications load their own.
    """
    return (
        ActionRequest.objects.select_for_update(of=("self",))
        .select_related("incident")
        .get(pk=action_request.pk)
    )


def _current_approvals(request: ActionRequest) -> QuerySet:
    """Approvals of the current round: one given before an expiry was for a stale plan."""
    return request.approvals.filter(decision=Decision.APPROVE, round=request.approval_round)


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
    transaction.on_commit(lambda: notify.decision_notify_queue(**payload), robust=True)


def action_request_approve(
    *, action_request: ActionRequest, approver: Any, reason: str = ""
) -> ActionRequest:
    """Record an approval; with enough of them the action is queued to run exactly once.

    The row lock serialises concurrent approvers; the conditional UPDATE to `approved`
    decides the one caller that queues the run, whatever the database.
    """
    from .tasks import run_action_task

    if not _can_approve(approver):
        raise ExecutorError("You do not have permission to approve actions.")
    reason = (reason or "").strip()
    queued = False
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
        if request.requested_by_id and request.requested_by_id == approver.pk:
            raise ExecutorError("You asked for this action; someone else must approve it.")
        if _current_approvals(request).filter(approver=approver).exists():
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
        given = _current_approvals(request).count()
        needed = approvals_required(request)
        progress = f" ({given} of {needed} approvals)" if needed > 1 else ""
        timeline_record(
            incident=request.incident_id,
            kind=TimelineKind.APPROVAL,
            actor=approver,
            message=f"{approver.get_username()} approved {request.action_id} ({request.action})"
            f"{progress}" + (f": {reason[:300]}" if reason else ""),
            payload={
                "action_request_id": request.pk,
                "decision": Decision.APPROVE,
                "approvals": given,
                "required": needed,
            },
        )
        if given >= needed and _transition(
            request, ActionStatus.APPROVED, from_statuses=[ActionStatus.AWAITING_APPROVAL]
        ):
            # approved → running in the same transaction: the worker's claim needs `running`.
            _transition(request, ActionStatus.RUNNING, from_statuses=[ActionStatus.APPROVED])
            _record_status(
                request, f"{request.action_id} ({request.action}) approved and queued", approver
            )
            transaction.on_commit(lambda: run_action_task.delay(request.pk))
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


def action_request_reject(
    *, action_request: ActionRequest, approver: Any, reason: str
) -> ActionRequest:
    """A final no, with the reason recorded; the action never runs."""
    if not _can_approve(approver):
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
        if not _transition(
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
        timeline_record(
            incident=request.incident_id,
            kind=TimelineKind.APPROVAL,
            actor=approver,
            message=f"{approver.get_username()} rejected {request.action_id} ({request.action}): "
            f"{reason[:300]}",
            payload={"action_request_id": request.pk, "decision": Decision.REJECT},
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
            if _transition(
                request,
                ActionStatus.EXPIRED,
                from_statuses=[ActionStatus.AWAITING_APPROVAL],
                finished_at=now,
            ):
                expired += 1
                _record_status(
                    request,
                    f"Approval request for {request.action_id} ({request.action}) expired "
                    "unanswered; ask again to run it",
                )
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
        prepared = _prepare_request(request, request.params)
        if prepared.blocked or prepared.spec is None:
            raise ExecutorError(f"It cannot be asked for again: {prepared.blocked}")
        why = approval_reason(prepared.spec.safety, request.runbook_marked_safe)
        now = timezone.now()
        if not _transition(
            request,
            ActionStatus.AWAITING_APPROVAL,
            from_statuses=[ActionStatus.EXPIRED],
            plan=_dry_run(prepared),
            target=prepared.target.name if prepared.target else "",
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
        _record_status(
            request,
            f"{actor.get_username()} asked again for approval of {request.action_id} "
            f"({request.action}); dry-run made afresh" + (f": {reason[:300]}" if reason else ""),
            actor,
        )
    request.refresh_from_db()
    return request


def sweep_stale(*, now: datetime | None = None) -> dict[str, int]:
    """Rows left behind by a dead worker say so instead of staying busy forever."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.EXECUTOR_STALE_AFTER_SECONDS)
    from runbooks.services import runbook_mark_failed

    counts = {"runbooks": 0, "executions": 0, "actions_lost": 0, "actions_requeued": 0}
    for rb_id in Runbook.objects.filter(
        status__in=[RunbookStatus.GENERATING, RunbookStatus.QUEUED], updated_at__lt=cutoff
    ).values_list("pk", flat=True):
        runbook_mark_failed(runbook_id=rb_id, error="worker lost during generation; regenerate it")
        counts["runbooks"] += 1
    counts["executions"] = Execution.objects.filter(
        status=ExecutionStatus.RUNNING, started_at__lt=cutoff
    ).update(status=ExecutionStatus.FAILED, error="worker lost while checks ran", finished_at=now)
    for request in ActionRequest.objects.filter(status=ActionStatus.RUNNING, started_at__lt=cutoff):
        with transaction.atomic():
            if _transition(
                request,
                ActionStatus.FAILED,
                from_statuses=[ActionStatus.RUNNING],
                error="worker lost: outcome unknown, verify before retrying",
                finished_at=now,
            ):
                counts["actions_lost"] += 1
                _record_status(
                    request,
                    f"{request.action_id}: worker lost: outcome unknown, verify before retrying",
                )
    # Queued but never claimed: it provably did not start, so it is safe to queue again.
    from .tasks import run_action_task

    unclaimed = dict(status=ActionStatus.RUNNING, started_at__isnull=True, updated_at__lt=cutoff)
    for pk in ActionRequest.objects.filter(**unclaimed).values_list("pk", flat=True):
        # Touch it first, so the next sweep does not queue it again while this message waits.
        if ActionRequest.objects.filter(pk=pk, **unclaimed).update(updated_at=now):
            run_action_task.delay(pk)
            counts["actions_requeued"] += 1
    return counts
