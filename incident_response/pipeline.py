"""The hand-offs between the stages of an incident: the only code that calls "up".

Apps depend one way, incidents <- runbooks <- executor. A lower app announces that
its stage is done through a signal it owns (`incidents.signals`, `runbooks.signals`);
this module listens and starts the next stage, always after the announcing
transaction commits. Nothing else imports a higher app from a lower one
(import-linter holds it in `make lint`).

    incident declared ─▶ runbook requested ─▶ context gathered ─▶ runbook generated ─▶ checks run
    (incidents)          (runbooks)           (evidence)          (runbooks)           (executor)

The runbook version is queued in the declaring transaction (so it is visible at
once); the context stage then gathers the evidence off the request path, and the
same task generates the runbook from it at once and then runs its checks: the
planner always sees the evidence, the target catalog is read once for both, and no
broker hop lies between the stages. A runbook made ready elsewhere (a retried
generation) has its checks run from the executor's queue.
"""

import logging
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from coordination.observe import on_timeline_events, war_room_replies
from evidence import sources as evidence_sources
from evidence.selectors import own_alert_texts, own_alerts_of
from evidence.stage import evidence_collect_started, evidence_store_started
from executor import authoring, decision_notices, evidence_source, targets
from executor.models import Execution
from executor.services import execution_open, execution_run
from executor.tasks import execute_runbook_task
from incidents.choices import IncidentStatus
from incidents.compiled import Compiled
from incidents.ingest.queue import enqueue
from incidents.models import Alert, AlertGroup
from incidents.signals import (
    incident_alerts_changed,
    incident_declared,
    incident_resolved,
    timeline_recorded,
)
from incidents.together import on_written
from learning.tasks import draft_postmortem_task
from runbooks.choices import RunbookStatus
from runbooks.generation import offer
from runbooks.models import Runbook
from runbooks.services import (
    RunbookBusy,
    recent_messages,
    recent_messages_of,
    runbook_claim,
    runbook_generate,
    runbook_lease,
    runbook_request,
    runbook_requeue,
)
from runbooks.signals import runbook_ready, runbook_requested
from runbooks.tasks import generate_runbook_task

logger = logging.getLogger(__name__)


def on_incident_declared(*, incident: Any, actor: Any = None, **_: Any) -> None:
    """A declared incident gets its first runbook at once, in the transaction that created
    it (so it needs neither a lock nor a look for earlier versions)."""
    runbook_request(incident=incident, actor=actor, first=True)


def on_runbook_requested(*, runbook_id: int, **_: Any) -> None:
    on_written(partial(context_schedule, runbook_id=runbook_id))


CONTEXT_STAGE = "incident_response.context_stage"


def context_schedule(*, runbook_id: int) -> None:
    """Gather the evidence on a worker (inline when eager), then generate."""
    if current_app.conf.task_always_eager:
        context_stage(runbook_id=runbook_id)
        return
    try:
        enqueue(CONTEXT_STAGE, args=[runbook_id])
    except Exception as exc:  # generate without fresh evidence rather than not at all
        logger.warning("context stage for runbook %s not queued: %s", runbook_id, exc)
        generate_runbook_task.delay(runbook_id)


def _stage_runbook_query(shape: None, *, runbook_id: int) -> QuerySet:
    """What the stage needs of the incident, read with the version in one statement."""
    first_alert = (
        Alert.objects.filter(incident_id=OuterRef("incident_id"), starts_at__isnull=False)
        .order_by("starts_at")
        .values("starts_at")[:1]
    )
    return (
        Runbook.objects.select_related("incident")
        .annotate(
            first_alert_at=Subquery(first_alert),
            recent_events=recent_messages(OuterRef("incident_id")),
            own_alerts=own_alert_texts(OuterRef("incident_id")),
        )
        .filter(pk=runbook_id)
        .order_by()[:1]
    )


# Its three subqueries cost more to build and plan than to answer: built once.
_stage_runbook = Compiled(_stage_runbook_query)


def context_stage(*, runbook_id: int) -> None:
    """Evidence before the plan: collectors in parallel, each with its deadline, then the
    runbook from what they found, in this task. A failure to gather never stops the
    runbook, which is then planned on what there is; a failure to generate (the database,
    the storage) goes to the generation task, which retries and then marks it failed."""
    runbook = _stage_runbook.first(runbook_id=runbook_id)
    if runbook is None or runbook.status != RunbookStatus.QUEUED:
        return
    ready: dict[int, Execution] = {}
    token = _checks_here.set(ready)
    try:
        with offer.offer().catalog_pinned():
            runbook = _gather_and_generate(runbook)
    finally:
        _checks_here.reset(token)
    if runbook is not None and runbook.pk in ready and runbook.status == RunbookStatus.READY:
        _run_checks_here(runbook, ready[runbook.pk])


def _gather_and_generate(runbook: Runbook) -> Runbook | None:
    """The collectors start, the version is claimed while they run, and the runbook is
    generated from what they found; None when another worker claimed it first."""
    runbook_id = runbook.pk
    collecting = None
    try:
        collecting = evidence_collect_started(
            incident=runbook.incident,
            first_alert_at=runbook.first_alert_at,
            own_alerts=own_alerts_of(runbook.own_alerts),
        )
    except Exception:
        logger.exception("evidence for incident %s not gathered", runbook.incident_id)
    attempt = runbook_claim(runbook)
    if attempt is None:
        return None  # its collectors end within their deadlines; what they find is dropped
    evidence = None
    storing = None
    with runbook_lease(runbook_id=runbook_id, attempt=attempt):
        try:
            if collecting is not None:
                collected = collecting.result()
                evidence = collected.gathered
                # Its snapshot and rows are written while the runbook is planned.
                storing = evidence_store_started(collected)
        except Exception:
            logger.exception("evidence for incident %s not gathered", runbook.incident_id)
        try:
            return runbook_generate(
                runbook_id=runbook_id,
                runbook=runbook,
                evidence=evidence,
                recent_events=recent_messages_of(runbook.recent_events),
                attempt=attempt,
            )
        except Exception:
            logger.exception("runbook %s not generated in the context stage", runbook_id)
            runbook_requeue(runbook_id=runbook_id)
            generate_runbook_task.delay(runbook_id)
            return None
        finally:
            _evidence_stored(storing, runbook.incident_id)


def _evidence_stored(storing: Future | None, incident_id: int) -> None:
    """Wait for the evidence being stored: the stage is not done before it is."""
    if storing is None:
        return
    try:
        storing.result()
    except Exception:
        logger.exception("evidence for incident %s gathered but not stored", incident_id)


# Inside the context stage: the versions it made ready, each with the execution opened in
# the same transaction, whose checks it runs itself once that commits, instead of
# queueing a task for them.
_checks_here: ContextVar[dict[int, Execution] | None] = ContextVar("checks_here", default=None)


def _run_checks_here(runbook: Runbook, execution: Execution) -> None:
    """The checks of the version this stage just made ready, in this task: no broker hop,
    and neither the version nor its document is read back (the executor checks the
    document against the recorded sha256 and reads the catalog afresh). Should this task
    die meanwhile, the execution it left running is failed by the executor's sweep."""
    try:
        with targets.catalog_unpinned():
            execution_run(runbook_id=runbook.pk, generated=runbook, execution=execution)
    except Exception:
        logger.exception("checks of runbook %s failed", runbook.pk)


def on_runbook_ready(*, runbook_id: int, **_: Any) -> None:
    waiting = _checks_here.get()
    if waiting is not None:
        # The context stage runs its checks once this commits; the execution commits
        # with the version, so a ready version is never without one.
        waiting[runbook_id] = execution_open(runbook_id=runbook_id)
        return
    on_written(partial(_execute, runbook_id))


def _execute(runbook_id: int) -> None:
    # Run eagerly, the executor must resolve the target catalog itself, not read the
    # generating stage's pinned copy. (Not a fresh contextvars.Context: Django keeps its
    # database connections in context variables, so that would open another one.)
    with targets.catalog_unpinned():
        execute_runbook_task.delay(runbook_id)


def on_incident_resolved(*, incident_id: int, **_: Any) -> None:
    """A resolved incident gets its postmortem draft once the resolution commits."""
    transaction.on_commit(partial(draft_postmortem_task.delay, incident_id))


def connect() -> None:
    """Wire the lower apps' signals to the next stage; called once from AppConfig.ready."""
    # The runbook author may offer exactly what the executor's registry allows.
    offer.install(authoring)
    # The context stage reads metrics and logs through the executor's connectors.
    evidence_sources.install(evidence_source)
    incident_declared.connect(on_incident_declared, dispatch_uid="pipeline.declared")
    runbook_requested.connect(on_runbook_requested, dispatch_uid="pipeline.runbook_requested")
    runbook_ready.connect(on_runbook_ready, dispatch_uid="pipeline.runbook_ready")
    incident_alerts_changed.connect(_runbook_on_alerts_changed, dispatch_uid="pipeline.runbook")
    incident_resolved.connect(on_incident_resolved, dispatch_uid="pipeline.resolved")
    # The war room follows the timeline (coordination sits above the stages it reports).
    timeline_recorded.connect(on_timeline_events, dispatch_uid="pipeline.war_room")
    # Approval news of an incident with a war room goes under its card, not to a channel.
    decision_notices.install_war_room_probe(war_room_replies)


# --- runbooks for alert-opened incidents: the first at once, refreshes debounced -------

RUNBOOK_DEBOUNCE = "incidents.runbook_debounce"  # the name queued messages already carry
PIPELINE_SWEEP = "incident_response.sweep_pipeline"


def _runbook_on_alerts_changed(
    sender: Any, *, incident_id: int, opened: bool = True, first: bool = True, **kwargs: Any
) -> None:
    """Alerts opened an incident (diagnose it at once) or joined one that has a runbook
    (a refresh is owed; `first` when this batch is the one that started owing it)."""
    transaction.on_commit(
        partial(runbook_schedule, incident_id=incident_id, opened=opened, first=first)
    )


# The advisory lock every admission under the ceiling takes (an arbitrary constant).
_CEILING_LOCK = 0x1A1E_57_0001


def _active_generations() -> int:
    return Runbook.objects.filter(
        status__in=[RunbookStatus.QUEUED, RunbookStatus.GENERATING]
    ).count()


def _serialise_admissions() -> None:
    """Admissions under the ceiling one at a time (PostgreSQL, until the transaction ends):
    otherwise two callers can both count three of four and both ask. SQLite runs one
    writer at a time anyway, and the embedded default has one process."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CEILING_LOCK])


def _runbook_waits() -> tuple[timedelta, timedelta]:
    """(quiet, longest): the debounce window, and the longest a runbook waits for quiet."""
    return (
        timedelta(seconds=settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS),
        timedelta(seconds=settings.INGEST_RUNBOOK_MAX_WAIT_SECONDS),
    )


def runbook_schedule(*, incident_id: int, opened: bool = True, first: bool = True) -> None:
    """After alerts change an incident: an opened one asks for its runbook (and evidence)
    at once; one that already has a runbook asks for a refresh when it is due.

    Eager (no worker, no timer) checks on every delivery; with a worker, the batch that
    starts owing a refresh sends the one message that waits for it, so a storm of joining
    alerts costs one message per window, not one per alert.
    """
    eager = current_app.conf.task_always_eager
    if not opened and not (first or eager):
        return  # a message is already waiting for this incident's refresh
    wait = runbook_debounce(incident_id=incident_id, immediate=opened)
    if wait is None or eager:
        return
    try:
        # By name: the tasks module imports this one, not the reverse.
        enqueue(RUNBOOK_DEBOUNCE, args=[incident_id], countdown=wait)
    except Exception as exc:  # the sweep asks once it is due
        logger.warning("runbook debounce for incident %s not scheduled: %s", incident_id, exc)


def runbook_debounce(
    *, incident_id: int, now: datetime | None = None, immediate: bool = False
) -> float | None:
    """Ask for the incident's runbook, or refresh it, when it is due and fewer than N
    generations are running.

    The first runbook: at once when `immediate` (the alert that opened the incident), else
    once its alerts are quiet (or the wait hit its ceiling). A refresh (alerts joined after
    the last request): one debounce window after the first of them, at most one per
    window, never while this incident's runbook is being generated. Returns seconds to
    wait before asking again, or None when there is nothing left to do.
    """
    now = now or timezone.now()
    group = AlertGroup.objects.select_related("incident").filter(incident_id=incident_id).first()
    if group is None:
        return None
    quiet, longest = _runbook_waits()
    requested = group.runbook_requested_at
    if requested is None:
        due = now if immediate else min(group.last_alert_at + quiet, group.opened_at + longest)
    elif group.refresh_wanted_at is None:
        return None
    elif group.incident.status == IncidentStatus.RESOLVED:
        AlertGroup.objects.filter(pk=group.pk).update(refresh_wanted_at=None)
        return None
    else:
        # Trailing: the alerts of one window make one refresh. Eager (no timer to come
        # back), the delivery that finds the window over refreshes at once.
        owed = group.refresh_wanted_at
        due = max(owed if current_app.conf.task_always_eager else owed + quiet, requested + quiet)
    if now < due:
        return max((due - now).total_seconds(), 0.5)
    retry = float(settings.INGEST_GENERATION_RETRY_SECONDS)
    if requested is not None and _generating(incident_id):
        return retry  # refreshed once the running generation is done
    ceiling = settings.INGEST_MAX_CONCURRENT_GENERATIONS
    if _active_generations() >= ceiling:
        return retry
    try:
        with transaction.atomic():
            # Count again under the lock: the count and the new queued version commit together.
            _serialise_admissions()
            if _active_generations() >= ceiling:
                return retry
            # Exactly one caller wins the request, however many tasks and sweeps race here:
            # the one whose UPDATE still sees the group as it was read.
            won = AlertGroup.objects.filter(
                pk=group.pk,
                runbook_requested_at=requested,
                refresh_wanted_at=group.refresh_wanted_at,
            ).update(runbook_requested_at=now, refresh_wanted_at=None)
            incident = group.incident
            if not won or incident.status == IncidentStatus.RESOLVED:
                return None
            if requested is None and incident.runbooks.exists():
                return None  # declared with a runbook already: nothing to refresh yet
            runbook_request(incident=incident, actor=None)
    except RunbookBusy:
        return retry  # a generation started meanwhile: the update above rolled back
    return None


def _generating(incident_id: int) -> bool:
    return Runbook.objects.filter(
        incident_id=incident_id, status__in=[RunbookStatus.QUEUED, RunbookStatus.GENERATING]
    ).exists()


@dataclass
class PipelineSweepReport:
    runbooks_checked: int = 0
    refreshes_checked: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def pipeline_sweep(*, now: datetime | None = None) -> PipelineSweepReport:
    """Ask for the runbooks and refreshes whose debounce message was lost (a down broker,
    a dead worker)."""
    now = now or timezone.now()
    report = PipelineSweepReport()
    quiet, longest = _runbook_waits()
    waiting = (
        AlertGroup.objects.filter(runbook_requested_at__isnull=True)
        .filter(Q(last_alert_at__lte=now - quiet) | Q(opened_at__lte=now - longest))
        .exclude(incident__status=IncidentStatus.RESOLVED)
        .values_list("incident_id", flat=True)[: settings.INGEST_SWEEP_BATCH]
    )
    for incident_id in list(waiting):
        runbook_debounce(incident_id=incident_id, now=now)
        report.runbooks_checked += 1
    # A resolved incident owes no refresh.
    AlertGroup.objects.filter(
        refresh_wanted_at__isnull=False, incident__status=IncidentStatus.RESOLVED
    ).update(refresh_wanted_at=None)
    owed = AlertGroup.objects.filter(
        refresh_wanted_at__lte=now - quiet, runbook_requested_at__lte=now - quiet
    ).values_list("incident_id", flat=True)[: settings.INGEST_SWEEP_BATCH]
    for incident_id in list(owed):
        runbook_debounce(incident_id=incident_id, now=now)
        report.refreshes_checked += 1
    return report
