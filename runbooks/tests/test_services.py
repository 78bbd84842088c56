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


@pytest.mark.django_db
def test_the_recent_messages_read_with_a_runbook_are_the_ones_the_planner_reads():
    from django.db.models import OuterRef

    from incidents.events import note_added_event
    from runbooks.models import Runbook
    from runbooks.services import _context, recent_messages, recent_messages_of

    incident = IncidentFactory()
    for i in range(25):  # more than are kept
        note_added_event(incident=incident, actor=None, text=f"note {i}")
    runbook = runbook_request(incident=incident)
    row = Runbook.objects.annotate(recent=recent_messages(OuterRef("incident_id"))).get(
        pk=runbook.pk
    )
    read = recent_messages_of(row.recent)
    assert len(read) == 20 and read[0] == "Runbook v1 queued" and "note 24" in read[1]
    assert read == _context(incident)["recent_events"]
