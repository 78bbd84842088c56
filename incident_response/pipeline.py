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
same task generates the runbook from it at once: the planner always sees the
evidence, the target catalog is read once for both, and no broker hop lies between
them. The checks run from the executor's own queue.
"""

import contextvars
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from coordination.observe import on_timeline_events
from evidence import sources as evidence_sources
from evidence.stage import evidence_gather
from executor import authoring, evidence_source
from executor.tasks import execute_runbook_task
from incidents.choices import IncidentStatus
from incidents.models import Alert, AlertGroup
from incidents.signals import (
    incident_alerts_changed,
    incident_declared,
    incident_resolved,
    timeline_recorded,
)
from learning.tasks import draft_postmortem_task
from runbooks.choices import RunbookStatus
from runbooks.generation import offer
from runbooks.models import Runbook
from runbooks.services import runbook_generate, runbook_request, runbook_requeue
from runbooks.signals import runbook_ready, runbook_requested
from runbooks.tasks import generate_runbook_task

logger = logging.getLogger(__name__)


def on_incident_declared(*, incident: Any, actor: Any = None, **_: Any) -> None:
    """A declared incident gets its first runbook at once, in the transaction that created
    it (so it needs neither a lock nor a look for earlier versions)."""
    runbook_request(incident=incident, actor=actor, first=True)


def on_runbook_requested(*, runbook_id: int, **_: Any) -> None:
    transaction.on_commit(partial(context_schedule, runbook_id=runbook_id))


CONTEXT_STAGE = "incident_response.context_stage"


def context_schedule(*, runbook_id: int) -> None:
    """Gather the evidence on a worker (inline when eager), then generate."""
    if current_app.conf.task_always_eager:
        context_stage(runbook_id=runbook_id)
        return
    try:
        current_app.send_task(CONTEXT_STAGE, args=[runbook_id], retry=False)
    except Exception as exc:  # generate without fresh evidence rather than not at all
        logger.warning("context stage for runbook %s not queued: %s", runbook_id, exc)
        generate_runbook_task.delay(runbook_id)


def context_stage(*, runbook_id: int) -> None:
    """Evidence before the plan: collectors in parallel, each with its deadline, then the
    runbook from what they found, in this task. A failure to gather never stops the
    runbook, which is then planned on what there is; a failure to generate (the database,
    the storage) goes to the generation task, which retries and then marks it failed."""
    first_alert = (
        Alert.objects.filter(incident_id=OuterRef("incident_id"), starts_at__isnull=False)
        .order_by("starts_at")
        .values("starts_at")[:1]
    )
    runbook = (
        Runbook.objects.select_related("incident")
        .annotate(first_alert_at=Subquery(first_alert))
        .filter(pk=runbook_id)
        .first()
    )
    if runbook is None or runbook.status != RunbookStatus.QUEUED:
        return
    evidence = None
    with offer.offer().catalog_pinned():
        try:
            gathered = evidence_gather(
                incident=runbook.incident, first_alert_at=runbook.first_alert_at
            )
            evidence = gathered.gathered
        except Exception:
            logger.exception("evidence for incident %s not gathered", runbook.incident_id)
        try:
            runbook_generate(runbook_id=runbook_id, runbook=runbook, evidence=evidence)
        except Exception:
            logger.exception("runbook %s not generated in the context stage", runbook_id)
            runbook_requeue(runbook_id=runbook_id)
            generate_runbook_task.delay(runbook_id)


def on_runbook_ready(*, runbook_id: int, **_: Any) -> None:
    # In an empty context: run eagerly, the executor must resolve the target catalog
    # itself, not read the generating stage's pinned copy.
    transaction.on_commit(
        partial(contextvars.Context().run, execute_runbook_task.delay, runbook_id)
    )


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


# --- runbooks for alert-opened incidents: one each, debounced, under a ceiling ----------

RUNBOOK_DEBOUNCE = "incidents.runbook_debounce"  # the name queued messages already carry
PIPELINE_SWEEP = "incident_response.sweep_pipeline"


def _runbook_on_alerts_changed(sender: Any, *, incident_id: int, **kwargs: Any) -> None:
    """An alert opened an incident: ask for its runbook once the announcing transaction commits."""
    transaction.on_commit(partial(runbook_schedule, incident_id=incident_id))


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
    """(quiet, longest): ask once alerts were quiet this long, or at most this long after opening."""
    return (
        timedelta(seconds=settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS),
        timedelta(seconds=settings.INGEST_RUNBOOK_MAX_WAIT_SECONDS),
    )


def runbook_schedule(*, incident_id: int) -> None:
    """After an incident opens: ask for its runbook (and its evidence) at once. The
    debounce only holds back when too many generations already run."""
    wait = runbook_debounce(incident_id=incident_id, immediate=True)
    if wait is None or current_app.conf.task_always_eager:
        return
    try:
        # By name: the tasks module imports this one, not the reverse.
        current_app.send_task(RUNBOOK_DEBOUNCE, args=[incident_id], countdown=wait, retry=False)
    except Exception as exc:  # the sweep asks once it is due
        logger.warning("runbook debounce for incident %s not scheduled: %s", incident_id, exc)


def runbook_debounce(
    *, incident_id: int, now: datetime | None = None, immediate: bool = False
) -> float | None:
    """Ask for the incident's runbook once, when its alerts have been quiet long enough
    (or the wait hit its ceiling) and fewer than N generations are running.

    Returns seconds to wait before asking again, or None when there is nothing left to do.
    """
    now = now or timezone.now()
    group = AlertGroup.objects.select_related("incident").filter(incident_id=incident_id).first()
    if group is None or group.runbook_requested_at is not None:
        return None
    if not immediate:
        quiet, longest = _runbook_waits()
        due = min(group.last_alert_at + quiet, group.opened_at + longest)
        if now < due:
            return max((due - now).total_seconds(), 0.5)
    ceiling = settings.INGEST_MAX_CONCURRENT_GENERATIONS
    if _active_generations() >= ceiling:
        return float(settings.INGEST_GENERATION_RETRY_SECONDS)
    with transaction.atomic():
        # Count again under the lock: the count and the new queued version commit together.
        _serialise_admissions()
        if _active_generations() >= ceiling:
            return float(settings.INGEST_GENERATION_RETRY_SECONDS)
        # Exactly one caller wins the request, however many tasks and sweeps race here.
        won = AlertGroup.objects.filter(pk=group.pk, runbook_requested_at__isnull=True).update(
            runbook_requested_at=now
        )
        incident = group.incident
        if not won or incident.status == IncidentStatus.RESOLVED or incident.runbooks.exists():
            return None
        runbook_request(incident=incident, actor=None)
    return None


@dataclass
class PipelineSweepReport:
    runbooks_checked: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def pipeline_sweep(*, now: datetime | None = None) -> PipelineSweepReport:
    """Ask for the runbooks whose debounce message was lost (a down broker, a dead worker)."""
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
    return report
