"""An alert-opened incident is diagnosed at once, and its evidence is gathered before the
runbook is generated."""

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
