"""The statements one declaration costs, from the declaring request to its checks done and
actions proposed, stay within a budget (bench/pipeline.py prints the worker's own count)."""

from collections import Counter
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executor.models import ActionRequest, Execution
from incidents.services import incident_declare
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook

# Measured when the budget was set: the whole pipeline, run inline in the test's
# transaction (savepoints stand in for BEGIN/COMMIT), database collectors included.
# PostgreSQL writes the declaration, the evidence set with its items, the move to ready
# with its event and execution, and the execution's record, in one statement each
# (incidents.together), with the ids they name reserved first.
MAX_STATEMENTS = {"postgresql": 23, "sqlite": 28}


@pytest.mark.django_db
def test_a_declaration_stays_within_its_statement_budget(django_capture_on_commit_callbacks):
    incident_declare(description="Warm-up: checkout errors", service="checkout")  # first reads
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        incident = incident_declare(
            description="Checkout database connection pool exhausted", service="checkout"
        )
    runbook = incident.runbooks.get()
    assert runbook.status == RunbookStatus.READY
    assert Execution.objects.filter(runbook=runbook).exclude(status="running").exists()
    assert ActionRequest.objects.filter(runbook=runbook).exists()
    kinds = Counter(q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries)
    budget = MAX_STATEMENTS[connection.vendor]
    assert len(queries) <= budget, f"{len(queries)} statements: {dict(kinds)}"


def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("one data-modifying statement is PostgreSQL's; set DATABASE_URL")


@pytest.fixture
def with_a_worker():
    """Declarations queue their stage (here, into a mock) instead of running it inline."""
    from incident_response.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    with mock.patch.object(app, "send_task") as send:
        yield send
    app.conf.task_always_eager = eager


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_declaration_is_one_statement_after_its_ids(with_a_worker):
    """In autocommit, as a web request runs it: the ids the rows name one another by,
    then the incident, its events and its first version in one statement; then, once
    written, its context stage is queued for that version."""
    from incident_response import pipeline
    from incidents.choices import TimelineKind

    _postgresql()
    with CaptureQueriesContext(connection) as queries:
        incident = incident_declare(description="Checkout errors after deploy", service="checkout")
    statements = [q["sql"] for q in queries.captured_queries]
    assert [s.split(None, 1)[0].upper() for s in statements] == ["SELECT", "SELECT", "WITH"]
    for table in ("incidents_incident", "runbooks_runbook", "incidents_timelineevent"):
        assert table in statements[-1]
    runbook = incident.runbooks.get()
    assert runbook.status == RunbookStatus.QUEUED and runbook.version == 1
    queued = incident.timeline.get(kind=TimelineKind.RUNBOOK_QUEUED)
    assert queued.payload["runbook_id"] == runbook.pk
    assert incident.timeline.filter(kind=TimelineKind.DECLARED).count() == 1
    assert [(c.args[0], c.kwargs["args"]) for c in with_a_worker.call_args_list] == [
        (pipeline.CONTEXT_STAGE, [runbook.pk])
    ]


@pytest.mark.django_db(transaction=True)
def test_a_declaration_that_cannot_be_written_leaves_nothing_and_queues_nothing(
    monkeypatch, with_a_worker
):
    from django.db import OperationalError

    from incidents import events
    from incidents.models import Incident, TimelineEvent

    _postgresql()

    def down(*args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(events, "write_together", down)
    with pytest.raises(OperationalError):
        incident_declare(description="Checkout errors after deploy", service="checkout")
    assert not Incident.objects.exists() and not TimelineEvent.objects.exists()
    assert not Runbook.objects.exists()
    with_a_worker.assert_not_called()
