"""Thin Celery wrappers around the ingest services.

The services queue these by name (`incidents.ingest.queue`) and never import this module.
"""

from celery import shared_task
from django.conf import settings

from .ingest.grouping import alerts_process
from .ingest.outbox import outbox_process, outbox_record_failure
from .ingest.queue import PROCESS_ALERTS, PROCESS_OUTBOX, SWEEP_OUTBOX
from .ingest.sweep import ingest_sweep


@shared_task(name=PROCESS_OUTBOX, bind=True, acks_late=True, max_retries=5, ignore_result=True)
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


@shared_task(name=PROCESS_ALERTS)
def process_alerts(alert_ids: list[int]) -> None:
    """Suspended alerts whose window has passed: open their incidents unless resolved."""
    alerts_process(alert_ids=[int(x) for x in alert_ids])


@shared_task(name=SWEEP_OUTBOX)
def sweep_outbox() -> dict[str, int]:
    return ingest_sweep().as_dict()
