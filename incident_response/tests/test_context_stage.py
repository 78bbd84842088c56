"""An alert-opened incident is diagnosed at once, and its evidence is gathered before the
runbook is generated."""

import threading
from unittest import mock

import pytest

from evidence.models import EvidenceSet
from incident_response import pipeline
from incident_response.celery import app
from incidents.models import AlertGroup, Incident
from incidents.tests.ingest_helpers import eager, make_source, post, secrets  # noqa: F401
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook


def generic(title: str, **fields) -> dict:
    return {"title": title, **fields}


pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets", "eager")]


def test_the_first_alert_asks_for_the_runbook_without_waiting(client, settings):
    settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS = 30
    make_source("generic")
    post(client, "generic", generic("First", service="search", dedup_key="1"))
    incident = Incident.objects.get()
    Runbook.objects.all().delete()
    AlertGroup.objects.update(runbook_requested_at=None)
    app.conf.task_always_eager = False  # the worker path: nothing may wait 30 s
    with mock.patch.object(app, "send_task") as send:
        pipeline.runbook_schedule(incident_id=incident.pk)
    assert incident.runbooks.count() == 1
    assert not [c for c in send.call_args_list if c.args[0] == pipeline.RUNBOOK_DEBOUNCE]


def test_the_runbook_is_generated_after_the_evidence_is_gathered(client):
    make_source("generic")
    post(client, "generic", generic("Checkout errors", service="checkout", dedup_key="x"))
    incident = Incident.objects.get()
    evidence_set = EvidenceSet.objects.get(incident=incident)
    runbook = incident.runbooks.get()
    assert runbook.status == RunbookStatus.READY
    assert evidence_set.created_at <= runbook.generated_at
    assert {e.collector for e in evidence_set.items.all()} >= {"alerts", "changes", "metrics"}


def _declared_with_a_worker() -> Runbook:
    """A declaration as the web process makes it with a worker: the context stage queued."""
    from incidents.services import incident_declare

    app.conf.task_always_eager = False
    with mock.patch.object(app, "send_task") as send:
        incident = incident_declare(description="Checkout errors after deploy", service="checkout")
    assert [c.args[0] for c in send.call_args_list] == [pipeline.CONTEXT_STAGE]
    return incident.runbooks.get()


def test_the_context_stage_runs_the_checks_of_the_version_it_made_ready():
    from executor.models import Execution
    from executor.tasks import execute_runbook_task

    runbook = _declared_with_a_worker()
    with (
        mock.patch.object(execute_runbook_task, "delay") as queued,
        mock.patch("executor.services.executions.artifact_load") as read_back,
    ):
        pipeline.context_stage(runbook_id=runbook.pk)
    queued.assert_not_called()  # no broker hop between the runbook and its checks
    read_back.assert_not_called()
    execution = Execution.objects.get(runbook=runbook)
    assert execution.status == "done" and execution.trigger == "pipeline"
    runbook.refresh_from_db()
    assert execution.check_runs.count() == len(runbook.artifact["checks"]) > 0


def test_a_version_made_ready_by_a_retried_generation_has_its_checks_queued():
    from executor.models import Execution
    from executor.tasks import execute_runbook_task
    from runbooks.services import runbook_generate

    runbook = _declared_with_a_worker()
    with mock.patch.object(execute_runbook_task, "delay") as queued:
        runbook_generate(runbook_id=runbook.pk)  # as generate_runbook_task does
    queued.assert_called_once_with(runbook.pk)
    assert not Execution.objects.filter(runbook=runbook).exists()


def test_a_document_in_hand_that_is_not_the_recorded_one_is_refused():
    from executor.services import execution_run
    from runbooks.services import runbook_generate

    runbook = _declared_with_a_worker()

    with mock.patch("executor.tasks.execute_runbook_task.delay"):
        generated = runbook_generate(runbook_id=runbook.pk)
    generated.artifact = {**generated.artifact, "confidence": 0.99}
    execution = execution_run(runbook_id=runbook.pk, generated=generated)
    assert execution.status == "refused"
    assert "refusing to run it" in execution.error
    assert not execution.check_runs.exists()


def test_evidence_that_cannot_be_stored_does_not_stop_the_runbook_nor_its_checks(caplog):
    """The planner has the gathered items before they are stored; a store that fails
    is logged, and the stage waits for it either way before it is done."""
    from executor.models import Execution

    runbook = _declared_with_a_worker()
    with (
        mock.patch("evidence.stage.snapshot_store", side_effect=OSError("bucket gone")),
        mock.patch.object(pipeline, "runbook_generate", wraps=pipeline.runbook_generate) as gen,
    ):
        pipeline.context_stage(runbook_id=runbook.pk)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY
    planned_from = gen.call_args.kwargs["evidence"]
    assert planned_from and [i["key"] for i in planned_from][0] == "E1"
    assert not EvidenceSet.objects.filter(incident=runbook.incident).exists()
    assert "gathered but not stored" in caplog.text
    assert Execution.objects.get(runbook=runbook).status == "done"


def test_the_stage_is_done_only_once_its_evidence_is_stored():
    runbook = _declared_with_a_worker()
    pipeline.context_stage(runbook_id=runbook.pk)
    evidence_set = EvidenceSet.objects.get(incident=runbook.incident)
    runbook.refresh_from_db()
    assert evidence_set.items.exists() and evidence_set.artifact_key
    assert evidence_set.created_at <= runbook.generated_at


def test_the_version_is_claimed_while_its_collectors_run():
    """The claim (an UPDATE and its commit) does not wait for the collectors: a collector
    that waits for the claim sees it made, and the version is generated under it."""
    from evidence import collectors
    from evidence.choices import Collector

    runbook = _declared_with_a_worker()
    claimed = threading.Event()
    seen: list[tuple[bool, str]] = []
    real_metrics, real_claim = collectors.REMOTE[Collector.METRICS], pipeline.runbook_claim

    def claim(rb):
        attempt = real_claim(rb)
        claimed.set()
        return attempt

    def metrics(scope, deadline):
        # Had the claim waited for the collectors, this would give up after a second.
        made = claimed.wait(timeout=1)
        status = Runbook.objects.filter(pk=runbook.pk).values_list("status", flat=True)[0]
        seen.append((made, status))
        return real_metrics(scope, deadline)

    with (
        mock.patch.dict(collectors.REMOTE, {Collector.METRICS: metrics}),
        mock.patch.object(pipeline, "runbook_claim", side_effect=claim),
    ):
        pipeline.context_stage(runbook_id=runbook.pk)
    assert seen == [(True, RunbookStatus.GENERATING)]
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY and runbook.attempts == 1


def test_a_version_claimed_by_another_worker_is_neither_generated_nor_given_evidence():
    """Two deliveries of one stage: the one that loses the claim stores nothing and
    generates nothing; the winner's work stands."""
    runbook = _declared_with_a_worker()
    with mock.patch.object(pipeline, "runbook_claim", return_value=None):
        pipeline.context_stage(runbook_id=runbook.pk)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.QUEUED and runbook.attempts == 0
    assert not EvidenceSet.objects.filter(incident=runbook.incident).exists()
    pipeline.context_stage(runbook_id=runbook.pk)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY
    assert EvidenceSet.objects.filter(incident=runbook.incident).count() == 1


def test_generating_under_a_claim_it_does_not_hold_is_refused():
    from runbooks.services import runbook_generate

    runbook = _declared_with_a_worker()
    with pytest.raises(ValueError, match="claimed runbook"):
        runbook_generate(runbook_id=runbook.pk, runbook=runbook, attempt=3)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.QUEUED


def test_the_execution_commits_with_the_version_it_checks():
    """A ready version is never without its execution: should the stage die before its
    checks run, the execution is there, running, for the sweep to fail."""
    from executor.models import Execution

    runbook = _declared_with_a_worker()
    with mock.patch.object(pipeline, "_run_checks_here") as checks:
        pipeline.context_stage(runbook_id=runbook.pk)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY
    execution = Execution.objects.get(runbook=runbook)
    assert execution.status == "running" and execution.trigger == "pipeline"
    # The stage would have run the checks of that very execution.
    assert checks.call_args.args[1].pk == execution.pk


def test_on_postgresql_the_move_to_ready_its_event_and_its_execution_are_one_statement():
    """Transactional here: the statement runs in autocommit, as on a worker."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from executor.models import Execution

    if connection.vendor != "postgresql":
        pytest.skip("one data-modifying statement is PostgreSQL's; set DATABASE_URL")
    runbook = _declared_with_a_worker()
    with (
        mock.patch.object(pipeline, "_run_checks_here"),
        CaptureQueriesContext(connection) as queries,
    ):
        pipeline.context_stage(runbook_id=runbook.pk)
    ready = [q["sql"] for q in queries.captured_queries if "executor_execution" in q["sql"]]
    assert len(ready) == 1, ready
    assert "runbooks_runbook" in ready[0] and "incidents_timelineevent" in ready[0]
    assert not [q for q in queries.captured_queries if q["sql"].startswith(("BEGIN", "SAVEPOINT"))]
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY and runbook.lease_expires_at is None
    assert Execution.objects.get(runbook=runbook).status == "running"
    assert runbook.incident.timeline.filter(kind="runbook_ready").count() == 1


def test_checks_under_another_runbook_s_execution_are_refused():
    from executor.services import execution_open, execution_run
    from incidents.services import incident_declare

    runbook = _declared_with_a_worker()
    other = incident_declare(description="Search latency", service="search").runbooks.get()
    execution = execution_open(runbook_id=runbook.pk)
    with pytest.raises(ValueError, match="execution of this runbook"):
        execution_run(runbook_id=other.pk, execution=execution)
