"""The sweeper: finish what a lost dispatch, a dead worker or a suspend window left undone.

Beat runs it every 30 seconds; with no worker and no beat (the embedded default),
requests do its rounds now and then (`sweep_when_eager`).
"""

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from incidents.models import Alert, AlertSource, IngestOutbox

from .grouping import alerts_process
from .outbox import outbox_process, outbox_record_failure
from .rows import ACTIVE

logger = logging.getLogger(__name__)

_last_eager_sweep = 0.0


@dataclass
class SweepReport:
    outbox_processed: int = 0
    outbox_failed: int = 0
    alerts_due: int = 0
    outbox_pruned: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def ingest_sweep(*, now: datetime | None = None) -> SweepReport:
    """Finish what a lost dispatch, a dead worker or a suspend window left undone."""
    now = now or timezone.now()
    report = SweepReport()
    limit = settings.INGEST_SWEEP_BATCH
    grace = timedelta(seconds=settings.INGEST_OUTBOX_GRACE_SECONDS)
    pending = list(
        IngestOutbox.objects.filter(
            processed_at__isnull=True,
            created_at__lte=now - grace,
            attempts__lt=settings.INGEST_OUTBOX_MAX_ATTEMPTS,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for outbox_id in pending:
        try:
            if outbox_process(outbox_id=outbox_id, now=now):
                report.outbox_processed += 1
        except Exception as exc:
            logger.exception("ingest outbox %s failed", outbox_id)
            outbox_record_failure(outbox_id=outbox_id, error=exc)
            report.outbox_failed += 1
    # Processed rows have done their work (the alerts keep the data): keep a day of them
    # for inspection, so the table and its pending index stay small.
    keep = timedelta(hours=settings.INGEST_OUTBOX_KEEP_HOURS)
    done = list(
        IngestOutbox.objects.filter(processed_at__lt=now - keep).values_list("pk", flat=True)[
            : limit * 10
        ]
    )
    if done:
        report.outbox_pruned, _ = IngestOutbox.objects.filter(pk__in=done).delete()

    for source in AlertSource.objects.filter(suspend_seconds__gt=0, enabled=True):
        due = list(
            Alert.objects.filter(
                source=source,
                incident__isnull=True,
                status__in=ACTIVE,
                fired_at__lte=now - timedelta(seconds=source.suspend_seconds),
            ).values_list("pk", flat=True)[:limit]
        )
        if due:
            alerts_process(alert_ids=due, now=now)
            report.alerts_due += len(due)
    return report


def sweep_when_eager() -> None:
    """With no worker and no beat (the embedded default), requests do the sweeper's rounds."""
    global _last_eager_sweep
    every = settings.INGEST_EAGER_SWEEP_EVERY_SECONDS
    if time.monotonic() - _last_eager_sweep < every:
        return
    _last_eager_sweep = time.monotonic()
    try:
        ingest_sweep()
    except Exception:
        logger.exception("eager ingest sweep failed")
