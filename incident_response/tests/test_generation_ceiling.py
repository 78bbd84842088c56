"""The ceiling of concurrent generations is strict: callers racing to ask for runbooks
never admit more than the ceiling between them."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from incident_response import pipeline
from incident_response.pipeline import runbook_debounce
from incidents.models import AlertGroup
from incidents.tests.factories import AlertSourceFactory, IncidentFactory
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from runbooks.tasks import generate_runbook_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_racing_admissions_never_pass_the_ceiling(settings, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (concurrent connections)")
    settings.INGEST_MAX_CONCURRENT_GENERATIONS = 4
    # The versions stay queued, as with a busy worker: nothing takes them off the count
    # (the context stage generates them, the generation task retries them).
    monkeypatch.setattr(pipeline, "context_schedule", lambda **kwargs: None)
    monkeypatch.setattr(generate_runbook_task, "delay", lambda *args, **kwargs: None)
    source = AlertSourceFactory(kind="generic", slug="generic")
    now = timezone.now()
    incidents = [IncidentFactory() for _ in range(16)]
    for incident in incidents:
        AlertGroup.objects.create(
            incident=incident, source=source, opened_at=now, last_alert_at=now
        )
    barrier = threading.Barrier(len(incidents))
    outcomes: list[object] = []

    def ask(incident_id: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes.append(runbook_debounce(incident_id=incident_id, immediate=True))
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(i.pk,)) for i in incidents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert Runbook.objects.filter(status=RunbookStatus.QUEUED).count() == 4
    assert outcomes.count(None) == 4  # the others were told to ask again later
