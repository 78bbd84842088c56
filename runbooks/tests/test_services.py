"""Runbook versions: one generation at a time per incident."""

import pytest

from incidents.tests.factories import IncidentFactory
from runbooks.choices import RunbookStatus
from runbooks.services import RunbookBusy, runbook_request


@pytest.mark.django_db
def test_a_second_request_while_one_is_queued_is_refused():
    incident = IncidentFactory()
    first = runbook_request(incident=incident)  # on_commit never fires here: it stays queued
    assert first.status == RunbookStatus.QUEUED
    with pytest.raises(RunbookBusy):
        runbook_request(incident=incident)
    first.status = RunbookStatus.READY
    first.save(update_fields=["status"])
    assert runbook_request(incident=incident).version == 2
