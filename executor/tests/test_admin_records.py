"""The executor's records in the admin: shown read-only, with their check runs."""

import pytest
from django.urls import reverse

from executor.choices import CheckOutcome, ExecutionStatus
from executor.models import CheckRun, Execution
from runbooks.tests.factories import ready_runbook


@pytest.mark.django_db
def test_an_execution_and_its_runbook_are_shown_read_only(admin_client):
    runbook = ready_runbook()
    execution = Execution.objects.create(runbook=runbook, status=ExecutionStatus.DONE)
    CheckRun.objects.create(
        execution=execution,
        check_id="check_health",
        action="http.health_check",
        outcome=CheckOutcome.OK,
        summary="200 in 12 ms",
    )
    body = admin_client.get(
        reverse("admin:executor_execution_change", args=[execution.pk])
    ).content.decode()
    assert "200 in 12 ms" in body
    assert 'name="_save"' not in body  # nothing to save: the services wrote it
    body = admin_client.get(reverse("admin:runbooks_runbook_change", args=[runbook.pk])).content
    assert b'name="_save"' not in body
    assert b'name="status"' not in body
