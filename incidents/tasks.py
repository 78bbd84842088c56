"""Thin Celery wrappers around the ingest services."""

import math

from celery import shared_task
from django.conf import settings

from .ingest.services import (
    alerts_process,
    ingest_sweep,
    outbox_process,
    outbox_record_failure,
    runbook_debounce,
)


@shared_task(
    name="incidents.process_outbox", bind=True, acks_late=True, max_retries=5, ignore_result=True
)
def process_outbox(self, outbox_id: int) -> bool:
    # A worker takes other pending rows along (one grouping pass for many deliveries).
    batch = 1 if self.request.is_eager else settings.INGEST_OUTBOX_BATCH
    try:
        return outbox_process(outbox_id=outbox_id, batch=batch)
    except Exception as exc:
        outbox_record_failure(outbox_id=outbox_id, error=exc)
        if self.request.is_eager:
            return False  # no worker to retry on: the sweeper picks the row up
        raise self.retry(exc=exc, countdown=min(5 * 2**self.request.retries, 300)) from exc


@shared_task(name="incidents.process_alerts")
def process_alerts(alert_ids: list[int]) -> None:
    """Suspended alerts whose window has passed: open their incidents unless resolved."""
    alerts_process(alert_ids=[int(x) for x in alert_ids])


@shared_task(name="incidents.runbook_debounce", bind=True)
def runbook_debounce_task(self, incident_id: int) -> str:
    wait = runbook_debounce(incident_id=incident_id)
    if wait is None:
        return "done"
    if not self.request.is_eager:
        # Alerts still arriving, or too many generations running: look again later.
        runbook_debounce_task.apply_async(args=[incident_id], countdown=math.ceil(wait))
    return f"waiting {wait:.0f}s"


@shared_task(name="incidents.sweep_outbox")
def sweep_outbox() -> dict[str, int]:
    return ingest_sweep().as_dict()
