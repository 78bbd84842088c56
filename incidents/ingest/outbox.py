"""After commit: hand the outbox row to the worker, which claims rows and processes them.

A row is processed exactly once: the claim (a conditional UPDATE) is the first write
of the transaction that groups its alerts. A failure is recorded on the row, which
waits for a retry or the sweeper.
"""

import logging
import time
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from incidents.models import IngestOutbox

from .dispatch import DISPATCHER, Sent
from .grouping import group_alerts
from .queue import eager

logger = logging.getLogger(__name__)


def outbox_dispatch(*, outbox_id: int) -> bool:
    """Hand the committed row to the worker (coalesced). If the broker is down the row
    waits for the sweeper, and says why."""
    if eager():
        # No worker to hand it to (the embedded default): process it here, as the eager
        # task would; a failure is recorded and the row waits for the sweeper.
        try:
            outbox_process(outbox_id=outbox_id)
        except Exception as exc:
            logger.exception("ingest outbox %s failed", outbox_id)
            outbox_record_failure(outbox_id=outbox_id, error=exc)
        return True
    outcome = DISPATCHER.dispatch(
        outbox_id,
        coalesce_ms=settings.INGEST_DISPATCH_COALESCE_MS,
        pause_seconds=settings.INGEST_DISPATCH_PAUSE_SECONDS,
    )
    if not outcome.ok:
        error = (
            f"dispatch failed: {outcome.error}"
            if outcome.sent == Sent.FAILED
            else "dispatch skipped: the broker was unreachable moments ago"
        )
        IngestOutbox.objects.filter(pk=outbox_id).update(last_error=error[:1000])
        return False
    return True


def outbox_record_failure(*, outbox_id: int, error: BaseException) -> None:
    """Count a failed attempt on an unprocessed row and keep its error for the admin."""
    IngestOutbox.objects.filter(pk=outbox_id, processed_at__isnull=True).update(
        attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:1000]
    )


def outbox_process(*, outbox_id: int, now: datetime | None = None, batch: int = 1) -> bool:
    """Process one outbox row exactly once; False when it was already processed.

    With `batch` > 1 (the worker), the same transaction also claims up to batch-1 other
    pending rows that no one else holds (PostgreSQL SKIP LOCKED), and then the worker goes
    on claiming batches until none is left: dispatches are coalesced, so one message stands
    for every row committed before it left. A busy webhook costs the worker one grouping
    pass per batch instead of one per delivery. If its first batch fails, the row is retried
    alone, so one bad row never holds back the others (the sweeper retries the rest). If
    draining fails, the error goes up: the task retries, and drains again.
    """
    if batch > 1 and connection.features.has_select_for_update_skip_locked:
        try:
            done = _outbox_claim_and_process(outbox_id, now or timezone.now(), batch)
        except Exception:
            logger.exception(
                "ingest outbox batch from %s failed; retrying the row alone", outbox_id
            )
        else:
            _outbox_drain(batch)
            return done
    return _outbox_claim_and_process(outbox_id, now or timezone.now(), 1)


def _outbox_drain(batch: int) -> None:
    """Claim and process pending rows in batches until none is left or the time is up,
    then leave the rest to a fresh message (other tasks wait behind this one)."""
    deadline = time.monotonic() + settings.INGEST_DRAIN_SECONDS
    while _outbox_claim_and_process(None, timezone.now(), batch):
        if time.monotonic() > deadline:
            more = (
                IngestOutbox.objects.filter(processed_at__isnull=True)
                .order_by("created_at")
                .first()
            )
            if more is not None:
                outbox_dispatch(outbox_id=more.pk)
            return


def _outbox_claim_and_process(outbox_id: int | None, now: datetime, batch: int) -> bool:
    """Claim `outbox_id` (None: no particular row) and up to `batch` rows in all; process
    their alerts in one transaction. False when nothing was claimed."""
    with transaction.atomic():
        # The claim is the first write: it also takes SQLite's write lock up front.
        # dispatched_at is written nowhere else, so it always equals processed_at.
        claim = {"processed_at": now, "dispatched_at": now}
        pks: list[int] = []
        if outbox_id is not None:
            if not IngestOutbox.objects.filter(pk=outbox_id, processed_at__isnull=True).update(
                **claim
            ):
                return False
            pks.append(outbox_id)
        if batch > len(pks):
            more = list(
                IngestOutbox.objects.select_for_update(skip_locked=True)
                .filter(processed_at__isnull=True)
                .order_by("created_at")  # the partial index of pending rows: no scan of done ones
                .values_list("pk", flat=True)[: batch - len(pks)]
            )
            if more:
                IngestOutbox.objects.filter(pk__in=more).update(**claim)
                pks += more
        if not pks:
            return False
        alert_ids: list[int] = []
        for ids in IngestOutbox.objects.filter(pk__in=pks).values_list("alert_ids", flat=True):
            alert_ids.extend(ids)
        group_alerts(list(dict.fromkeys(alert_ids)), now)
    return True
