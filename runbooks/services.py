"""Verbs for runbooks: request a new version, generate it, record the outcome."""

import logging
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from incidents.events import (
    generation_fallback_event,
    runbook_failed_event,
    runbook_invalid_event,
    runbook_queued_event,
    runbook_ready_event,
    written_with_events,
)
from incidents.models import Incident, TimelineEvent
from incidents.nested import JSONRows, rows
from incidents.signals import announce
from incidents.together import deferring, save_or_defer
from incidents.transitions import Move, apply_move, check_transition, planned_move, transition

from .artifacts import artifact_store
from .choices import RUNBOOK_TRANSITIONS, RunbookAuthor, RunbookStatus
from .generation import generate_runbook_document
from .generation.offer import offer
from .leases import LeaseHeartbeat, lease_hold
from .models import Runbook
from .signals import runbook_ready, runbook_requested

logger = logging.getLogger(__name__)


class RunbookBusy(Exception):
    """A version is already queued or being generated; one at a time per incident."""


def runbook_request(*, incident: Incident, actor: Any = None, first: bool = False) -> Runbook:
    """Create the next queued version and queue its generation once the caller commits.

    Refuses (RunbookBusy) while the newest version is still queued or generating.
    `first` is for the transaction that created the incident: nobody else can see it
    yet, so it has no version and needs no lock.
    """
    if first:
        if not (transaction.get_connection().in_atomic_block or deferring()):
            raise RuntimeError("first=True belongs in the write that creates the incident")
        return _request(incident=incident, actor=actor, version=1)
    with transaction.atomic():
        # Lock the incident: two requests can neither take one version number nor both pass.
        Incident.objects.select_for_update().filter(pk=incident.pk).first()
        newest = incident.runbooks.order_by("-version").only("version", "status").first()
        if newest is not None and newest.status in (RunbookStatus.QUEUED, RunbookStatus.GENERATING):
            raise RunbookBusy("A runbook version is already being generated.")
        latest = newest.version if newest else 0
        return _request(incident=incident, actor=actor, version=latest + 1)


def _request(*, incident: Incident, actor: Any, version: int) -> Runbook:
    # Written in the caller's transaction, or with the declaration's one statement (then
    # nothing is written here but its id, reserved: the event and the queued stage name it).
    with nullcontext() if deferring() else transaction.atomic(savepoint=False):
        runbook = save_or_defer(
            Runbook(
                incident=incident,
                version=version,
                status=RunbookStatus.QUEUED,
                requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            ),
            reserve=True,
        )
        runbook_queued_event(
            incident=incident, actor=actor, runbook_id=runbook.pk, version=runbook.version
        )
        announce(runbook_requested, runbook_id=runbook.pk)
    return runbook


def _move(runbook_id: int, source: str | list[str], target: str, **fields: Any) -> bool:
    """A move of the runbook table as a conditional UPDATE; True if this caller made it."""
    return transition(
        Runbook,
        pk=runbook_id,
        table=RUNBOOK_TRANSITIONS,
        from_status=source,
        to_status=target,
        **fields,
    )


def runbook_claim(runbook: Runbook) -> int | None:
    """queued → generating for exactly one caller, holding a fresh lease.

    One conditional UPDATE on the attempt number read with the row: it wins only if
    nobody claimed the version since, so the new number is this claim's (the fencing
    token). Returns it, or None if another caller won. The holder keeps its lease
    renewed (`runbook_lease`) until it hands the attempt to `runbook_generate`.
    """
    check_transition(
        RUNBOOK_TRANSITIONS, RunbookStatus.QUEUED, RunbookStatus.GENERATING, model="Runbook"
    )
    now = timezone.now()
    attempt = runbook.attempts + 1
    lease = now + timedelta(seconds=settings.RUNBOOK_LEASE_SECONDS)
    won = Runbook.objects.filter(
        pk=runbook.pk, status=RunbookStatus.QUEUED, attempts=runbook.attempts
    ).update(
        status=RunbookStatus.GENERATING, attempts=attempt, lease_expires_at=lease, updated_at=now
    )
    if not won:
        return None
    runbook.status, runbook.attempts, runbook.lease_expires_at = (
        RunbookStatus.GENERATING,
        attempt,
        lease,
    )
    return attempt


def _finish_move(runbook: Runbook, attempt: int, target: str, **fields: Any) -> Move:
    """generating → `target` for the holder of claim `attempt` only: the conditional UPDATE
    is both the lease check (see leases.lease_hold) and the move."""
    return planned_move(
        Runbook,
        pk=runbook.pk,
        table=RUNBOOK_TRANSITIONS,
        from_status=RunbookStatus.GENERATING,
        to_status=target,
        where={"attempts": attempt},
        lease_expires_at=None,
        **fields,
    )


def _finished(runbook: Runbook, move: Move) -> None:
    for name, value in move.values.items():
        setattr(runbook, name, value)


def _finish(runbook: Runbook, attempt: int, target: str, **fields: Any) -> bool:
    """Make `_finish_move` in one UPDATE; True if the claim held."""
    move = _finish_move(runbook, attempt, target, **fields)
    held = apply_move(move)
    if held:
        _finished(runbook, move)
    return held


def runbook_requeue(*, runbook_id: int) -> bool:
    """generating → queued, so that a retry of the task can claim it again."""
    return _move(runbook_id, RunbookStatus.GENERATING, RunbookStatus.QUEUED, lease_expires_at=None)


RECENT_EVENTS = 20


def _recent_events(incident_id: Any) -> QuerySet:
    """The incident's last RECENT_EVENTS timeline events, newest first: what the author
    reads of the timeline, read here or nested (`recent_messages`)."""
    events = TimelineEvent.objects.filter(incident_id=incident_id)
    return events.order_by("-created_at", "-id")[:RECENT_EVENTS]


def recent_messages(incident_id_ref: Any) -> JSONRows:
    """The incident's last timeline messages as an annotation, so a caller that reads the
    runbook reads them too; `recent_messages_of` decodes it."""
    return JSONRows(_recent_events(incident_id_ref), "id", "message")


def recent_messages_of(value: str | None) -> list[str]:
    """What `recent_messages` read, newest first (as `_context` reads them itself)."""
    return [message for _, message in reversed(rows(value))]


def _context(incident: Incident, version: int | None = None, recent: list | None = None) -> dict:
    if recent is None:
        recent = list(_recent_events(incident.pk).values_list("message", flat=True))
    previous = (
        # Version 1 has no earlier version to read.
        incident.runbooks.filter(status=RunbookStatus.READY).order_by("-version").first()
        if version != 1
        else None
    )
    return {
        "targets": offer().offered_targets(incident.service),
        "recent_events": recent,
        "previous_runbook": previous.artifact if previous else None,
    }


def _given_up(runbook: Runbook) -> Runbook:
    """The version as it is now: the sweeper failed it while it generated, and that stands."""
    runbook.refresh_from_db()
    return runbook


def runbook_lease(*, runbook_id: int, attempt: int) -> LeaseHeartbeat:
    """The heartbeat that renews claim `attempt`'s lease while the block runs."""
    return LeaseHeartbeat(
        runbook_id=runbook_id, attempt=attempt, seconds=settings.RUNBOOK_LEASE_SECONDS
    )


def runbook_generate(
    *,
    runbook_id: int,
    runbook: Runbook | None = None,
    evidence: list[dict] | None = None,
    recent_events: list[str] | None = None,
    attempt: int | None = None,
) -> Runbook:
    """Generate, validate, store and record one queued runbook version.

    Exactly one caller gets to generate a version; any other returns it as it is.
    Afterwards the checks are queued on commit. `runbook` (loaded with its incident),
    `evidence` (the items just gathered) and `recent_events` (the incident's last
    timeline messages, see `recent_messages`) spare reading them again. `attempt`: the
    caller claimed the version already (`runbook_claim`, with `runbook`) and keeps its
    lease renewed while this runs.
    """
    if attempt is None:
        if runbook is None:
            runbook = Runbook.objects.select_related("incident").get(pk=runbook_id)
        if runbook.status != RunbookStatus.QUEUED:
            return runbook
        attempt = runbook_claim(runbook)
        if attempt is None:
            return Runbook.objects.get(pk=runbook_id)
        # The lease is renewed until the version is recorded, the store included: a slow
        # store (a first client to build, retries) must not let the sweep hand the version
        # to another worker, which would generate it again.
        with runbook_lease(runbook_id=runbook_id, attempt=attempt):
            return _generate_claimed(runbook, attempt, evidence, recent_events)
    if runbook is None or runbook.attempts != attempt:
        raise ValueError("runbook_generate(attempt=...) needs the claimed runbook")
    return _generate_claimed(runbook, attempt, evidence, recent_events)


def _generate_claimed(
    runbook: Runbook, attempt: int, evidence: list[dict] | None, recent_events: list[str] | None
) -> Runbook:
    runbook_id = runbook.pk
    incident = runbook.incident
    try:
        # Prompt, schema, planner and step checks all ask for the catalog: read it once.
        with offer().catalog_pinned():
            context = _context(incident, runbook.version, recent=recent_events)
            if evidence is not None:
                context["evidence"] = evidence
            result = generate_runbook_document(incident=incident, context=context)
    except Exception as exc:
        logger.exception("runbook %s generation failed", runbook_id)
        return runbook_mark_failed(
            runbook_id=runbook_id, error=f"{type(exc).__name__}: {exc}", attempt=attempt
        )

    usage = result.usage
    common = {
        "author": result.author,
        "model_id": result.model_id[:100],
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "generated_at": timezone.now(),
        "updated_at": timezone.now(),
    }
    fell_back = (
        result.author == RunbookAuthor.OFFLINE and settings.ANTHROPIC_API_KEY and result.notes
    )
    if result.validation_errors or result.document is None:
        errors = [i.as_dict() for i in result.validation_errors]
        with transaction.atomic():
            # Lost only when the lease ran out and the version was queued again (or
            # failed): this worker's result is thrown away; whoever claimed it since
            # writes theirs.
            if not _finish(
                runbook,
                attempt,
                RunbookStatus.INVALID,
                artifact=result.document,
                validation_errors=errors,
                error="The generated runbook does not match the contract.",
                **common,
            ):
                return _given_up(runbook)
            if fell_back:
                generation_fallback_event(
                    incident=incident, runbook_id=runbook.pk, notes=result.notes
                )
            runbook_invalid_event(
                incident=incident,
                runbook_id=runbook.pk,
                version=runbook.version,
                author=result.author,
                errors=errors,
            )
        return runbook

    # Stored before the row says so: a lost lease leaves an unreferenced artifact at
    # worst, and no transaction waits on the storage.
    key, digest = artifact_store(
        incident_id=incident.pk, version=runbook.version, data=result.document
    )
    ready = {
        "artifact": result.document,
        "artifact_key": key,
        "artifact_sha256": digest,
        "validation_errors": [i.as_dict() for i in result.step_errors],
        **common,
    }

    def recorded() -> None:
        """What is written with the move: its events, and whatever the hand-off adds."""
        if fell_back:
            generation_fallback_event(incident=incident, runbook_id=runbook.pk, notes=result.notes)
        runbook_ready_event(
            incident=incident,
            runbook_id=runbook.pk,
            version=runbook.version,
            author=result.author,
            document=result.document,
            sha256=digest,
            key=key,
            notes=result.notes,
            usage={
                "input": usage.input_tokens,
                "output": usage.output_tokens,
                "cache_read": usage.cache_read_tokens,
                "cache_write": usage.cache_write_tokens,
            },
        )
        announce(runbook_ready, runbook_id=runbook.pk)

    if connection.vendor == "postgresql":
        # One statement: the move, its events and the hand-off's rows (the execution),
        # none of them written unless the claim held.
        move = _finish_move(runbook, attempt, RunbookStatus.READY, **ready)
        if not written_with_events([], recorded, move, only_if_moved=True):
            return _given_up(runbook)
        _finished(runbook, move)
        return runbook
    with transaction.atomic():
        if not _finish(runbook, attempt, RunbookStatus.READY, **ready):
            return _given_up(runbook)
        recorded()
    return runbook


def runbook_mark_failed(*, runbook_id: int, error: str, attempt: int | None = None) -> Runbook:
    """Any non-final state → failed, with the reason on the timeline.

    With `attempt`, only while that claim still holds the version (see leases).
    """
    with transaction.atomic():
        if attempt is not None and not lease_hold(runbook_id=runbook_id, attempt=attempt):
            return Runbook.objects.get(pk=runbook_id)
        updated = _move(
            runbook_id,
            [RunbookStatus.QUEUED, RunbookStatus.GENERATING],
            RunbookStatus.FAILED,
            error=error[:4000],
        )
        runbook = Runbook.objects.get(pk=runbook_id)
        if updated:
            runbook_failed_event(
                incident=runbook.incident_id,
                runbook_id=runbook_id,
                version=runbook.version,
                error=error,
            )
    return runbook


LEASE_LOST = "the worker generating it stopped renewing its lease"


def runbook_sweep_leases(*, now: datetime | None = None) -> dict[str, int]:
    """Free the slots of versions whose generating worker stopped renewing its lease.

    Each goes back to the queue (and its generation is asked for again) until it has been
    claimed RUNBOOK_MAX_ATTEMPTS times; then it fails, with the reason on the timeline.
    """
    now = now or timezone.now()
    counts = {"requeued": 0, "failed": 0}
    expired = Runbook.objects.filter(
        status=RunbookStatus.GENERATING, lease_expires_at__lt=now
    ).values_list("pk", "attempts", "version", "incident_id")
    for pk, attempts, version, incident_id in list(expired[:500]):
        with transaction.atomic():
            # Lock the row only if it is still the same expired claim: a holder that renewed
            # in the meantime, or a newer claim, keeps it.
            if not Runbook.objects.filter(
                pk=pk, status=RunbookStatus.GENERATING, attempts=attempts, lease_expires_at__lt=now
            ).update(lease_expires_at=None):
                continue
            if attempts >= settings.RUNBOOK_MAX_ATTEMPTS:
                error = f"{LEASE_LOST}, {attempts} times; gave up"
                _move(pk, RunbookStatus.GENERATING, RunbookStatus.FAILED, error=error)
                runbook_failed_event(
                    incident=incident_id, runbook_id=pk, version=version, error=error
                )
                counts["failed"] += 1
                continue
            _move(pk, RunbookStatus.GENERATING, RunbookStatus.QUEUED)
            runbook_queued_event(
                incident=incident_id,
                actor=None,
                runbook_id=pk,
                version=version,
                attempt=attempts + 1,
                reason=LEASE_LOST,
            )
            announce(runbook_requested, runbook_id=pk)
            counts["requeued"] += 1
    return counts
