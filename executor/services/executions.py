"""Executions: re-verify a stored runbook, run its checks, and propose its actions."""

from collections import Counter
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from incidents.events import (
    checks_done_event,
    checks_started_event,
    execution_refused_event,
    timeline_batch,
    written_with_events,
)
from incidents.together import reserve_ids, save_or_defer
from incidents.transitions import Move, planned_move, transition
from runbooks.artifacts import (
    ArtifactMissing,
    ArtifactTampered,
    artifact_load,
    canonical_bytes,
    sha256_hex,
)
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from runbooks.validation import validate_runbook

from ..choices import EXECUTION_TRANSITIONS, ExecutionStatus, StepKind
from ..engine import prepare_step, start_checks
from ..models import CheckRun, Execution
from ..targets import target_scope
from .action_requests import (
    action_requests_announce,
    action_requests_plan,
    action_requests_store,
)
from .common import ExecutorError


def _execution_done(execution_id: int, finished: datetime) -> Move:
    """running → done, for `write_together`; lost only to the sweeper, which gave the
    worker up: its verdict stands."""
    return planned_move(
        Execution,
        pk=execution_id,
        table=EXECUTION_TRANSITIONS,
        from_status=ExecutionStatus.RUNNING,
        to_status=ExecutionStatus.DONE,
        finished_at=finished,
    )


def _execution_move(execution_id: int, to_status: str, **fields: Any) -> bool:
    """running → an end state, as a conditional UPDATE; True if this caller made the move."""
    return transition(
        Execution,
        pk=execution_id,
        table=EXECUTION_TRANSITIONS,
        from_status=ExecutionStatus.RUNNING,
        to_status=to_status,
        **fields,
    )


def _load_verified(runbook: Runbook, stored: dict | None = None) -> dict:
    """The artifact as stored, refused if tampered with or no longer valid.

    `stored`: the document whose bytes this process has just stored (its generation);
    it stands for the read-back only if those bytes are the recorded sha256."""
    if runbook.status != RunbookStatus.READY or not runbook.artifact_key:
        raise ExecutorError(f"runbook v{runbook.version} is {runbook.status}, not ready")
    try:
        if stored is not None:
            digest = sha256_hex(canonical_bytes(stored))
            if digest != runbook.artifact_sha256:
                raise ArtifactTampered(
                    f"runbook v{runbook.version} in hand has sha256 {digest[:12]}…, the "
                    f"database recorded {runbook.artifact_sha256[:12]}…; refusing to run it"
                )
            document = stored
        else:
            document = artifact_load(
                key=runbook.artifact_key, expected_sha256=runbook.artifact_sha256
            )
    except (ArtifactTampered, ArtifactMissing) as exc:
        raise ExecutorError(str(exc)) from exc
    # The bytes were checked against the recorded sha256: if these very bytes passed
    # the contract in this process (its generation), the validator need not run twice.
    issues = validate_runbook(document, sha256=runbook.artifact_sha256)
    if issues:
        raise ExecutorError(
            "stored artifact fails the contract: " + "; ".join(str(i) for i in issues[:5])
        )
    return document


def _execution_ids(execution: Execution, runbook: Runbook) -> dict[str, int]:
    """What every timeline event about an execution names: incident, runbook, execution."""
    return {
        "incident": runbook.incident_id,
        "runbook_id": runbook.pk,
        "execution_id": execution.pk,
        "version": runbook.version,
    }


def execution_open(*, runbook_id: int, trigger: str = "pipeline") -> Execution:
    """A running execution of the version, its checks still to run (`execution_run`).

    Written with the move that makes the version ready (its transaction, or its one
    statement: `incidents.together.write_later`), a ready version is never without its
    execution, and no commit of its own is spent on it. Should its checks never run (the
    worker dies), the sweep fails it (`services.sweep`)."""
    return save_or_defer(Execution(runbook_id=runbook_id, trigger=trigger))


def execution_run(
    *,
    runbook_id: int,
    trigger: str = "pipeline",
    actor: Any = None,
    generated: Runbook | None = None,
    execution: Execution | None = None,
) -> Execution:
    """Re-verify the stored runbook, run its checks, and (first run) propose its actions.

    Whatever goes wrong, the execution ends as refused, done or failed, never running.
    `generated`: the version (with its incident and document) as this process has just
    generated, stored and committed it: it is not read again, and its document stands
    for the stored bytes once it hashes to the recorded sha256. `execution`: the one
    opened for it already (`execution_open`), else a new one.
    """
    stored = None
    if generated is not None and generated.pk == runbook_id:
        runbook, stored = generated, generated.artifact
    else:
        runbook = Runbook.objects.select_related("incident").get(pk=runbook_id)
    if execution is None:
        execution = Execution.objects.create(runbook=runbook, trigger=trigger)
    elif execution.runbook_id != runbook_id:
        raise ValueError("execution_run(execution=...) needs an execution of this runbook")
    try:
        return _execute(
            execution=execution, runbook=runbook, trigger=trigger, actor=actor, stored=stored
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        execution_mark_failed(execution_id=execution.pk, error=error)
        execution_refused_event(**_execution_ids(execution, runbook), error=error, crashed=True)
        raise


def _execute(
    *, execution: Execution, runbook: Runbook, trigger: str, actor: Any, stored: dict | None
) -> Execution:
    try:
        document = _load_verified(runbook, stored)
    except ExecutorError as exc:
        with transaction.atomic():
            _execution_move(
                execution.pk, ExecutionStatus.REFUSED, error=str(exc), finished_at=timezone.now()
            )
            execution_refused_event(
                **_execution_ids(execution, runbook), actor=actor, error=str(exc), crashed=False
            )
        execution.refresh_from_db()
        return execution

    scope = target_scope(runbook.incident.service)
    steps = [
        prepare_step(step=step, position=i, kind=StepKind.CHECK, scope=scope)
        for i, step in enumerate(document["checks"])
    ]
    pending = start_checks(steps)
    # Dry-run plans may read the targets: while the checks run, before the transaction,
    # holding no lock.
    planned = (
        action_requests_plan(runbook=runbook, document=document, scope=scope)
        if trigger == "pipeline"
        else None
    )
    if planned and connection.vendor == "postgresql":
        reserve_ids(planned)  # one round trip, while the checks still run
    outcomes = pending.outcomes()
    finished = timezone.now()
    try:
        _record(execution, runbook, document, outcomes, planned, finished, trigger, actor)
    except IntegrityError:
        # Some of its actions were proposed already (a redelivered task): the whole
        # transaction rolled back; again, storing each request on its own.
        _record(
            execution, runbook, document, outcomes, planned, finished, trigger, actor, bulk=False
        )
    if execution.status == ExecutionStatus.RUNNING:
        execution.refresh_from_db()
    return execution


def _record(
    execution: Execution,
    runbook: Runbook,
    document: dict,
    outcomes: list,
    planned: list | None,
    finished: datetime,
    trigger: str,
    actor: Any,
    *,
    bulk: bool = True,
) -> None:
    """Check runs, the end of the execution, the proposed actions and their timeline
    events, all or nothing: on PostgreSQL one statement, elsewhere one transaction with
    one INSERT for the events (started, done, proposed)."""
    check_runs = [
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
    ids = _execution_ids(execution, runbook)
    counts = dict(Counter(o.outcome for o in outcomes))
    checks = len(document["checks"])
    if bulk and connection.vendor == "postgresql":

        def recorded() -> None:
            checks_started_event(**ids, actor=actor, checks=checks, trigger=trigger)
            checks_done_event(**ids, actor=actor, counts=counts)
            if planned:
                # Written with the proposals it names: their ids were reserved while the
                # checks ran (`_execute`).
                action_requests_announce(runbook=runbook, created=planned)

        move = _execution_done(execution.pk, finished)
        if written_with_events([check_runs, planned or []], recorded, move):
            execution.status, execution.finished_at = ExecutionStatus.DONE, finished
        return
    with transaction.atomic(), timeline_batch():
        checks_started_event(**ids, actor=actor, checks=checks, trigger=trigger)
        CheckRun.objects.bulk_create(check_runs)
        # Lost only to the sweeper, which gave the worker up: its verdict stands.
        if _execution_move(execution.pk, ExecutionStatus.DONE, finished_at=finished):
            execution.status, execution.finished_at = ExecutionStatus.DONE, finished
        checks_done_event(**ids, actor=actor, counts=counts)
        if planned is not None:
            action_requests_store(runbook=runbook, planned=planned, bulk=bulk)


def execution_mark_failed(*, execution_id: int, error: str, at: datetime | None = None) -> bool:
    """running → failed; False when the execution had already ended."""
    return _execution_move(
        execution_id, ExecutionStatus.FAILED, error=error[:4000], finished_at=at or timezone.now()
    )
