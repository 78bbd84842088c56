"""The statements one declaration costs, from the declaring request to its checks done and
actions proposed, stay within a budget (bench/pipeline.py prints the worker's own count)."""

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executor.models import ActionRequest, Execution
from incidents.services import incident_declare
from runbooks.choices import RunbookStatus

# Measured when the budget was set: the whole pipeline, run inline in the test's
# transaction (savepoints stand in for BEGIN/COMMIT), database collectors included.
# PostgreSQL writes the evidence set with its items, the move to ready with its event and
# execution, and the execution's record, in one statement each (incidents.together).
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
