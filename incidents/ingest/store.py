"""The request: store one delivery's alerts (deduplicated) and an outbox row, and answer.

The handler only runs `alert_ingest`: it stores the alerts and an outbox row in one
transaction and answers. Everything after (grouping, opening or updating incidents,
clearing) runs from the outbox row once the transaction commits, through Celery
(`outbox.py`), or inline when Celery is eager; the sweeper (`sweep.py`) picks up whatever
a down broker or a dead worker left behind, so an accepted alert is never lost.
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.models import Alert, AlertSource, IngestOutbox
from incidents.storable import clean_payload

from .base import ParsedAlert, PayloadError
from .grouping import group_alerts
from .outbox import outbox_dispatch
from .queue import eager
from .registry import parse_payload
from .rows import UPDATE_FIELDS, apply_repeat, new_values
from .severity import severity_normalise
from .store_pg import insert_directly, insert_new
from .sweep import sweep_when_eager

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What one delivery did, counted per alert, and the outbox row it left."""

    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored: int = 0
    outbox_id: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)


def alert_ingest(*, source: AlertSource, payload: Any, now: datetime | None = None) -> IngestResult:
    """Store one delivery's alerts (deduplicated) and its outbox row; raise PayloadError."""
    try:
        # PostgreSQL stores neither NUL nor a lone surrogate, in text or in JSON.
        payload = clean_payload(payload)
    except RecursionError as exc:
        raise PayloadError("the payload is nested too deeply") from exc
    parsed = parse_payload(source.kind, payload, default_service=source.default_service)
    now = now or timezone.now()
    result = IngestResult(received=len(parsed.alerts))
    todo = parsed.alerts
    if insert_directly(todo):
        result.created, result.outbox_id, todo = insert_new(source, todo, now)
        if result.outbox_id is not None:
            transaction.on_commit(partial(outbox_dispatch, outbox_id=result.outbox_id))
    if todo:
        for attempt in range(3):
            tried = replace(result)  # a rolled-back attempt's counts go with it
            try:
                _store(source, todo, now, tried)
            except IntegrityError as exc:
                # Two deliveries created the same new alert at once; the retry sees it.
                if attempt == 2 or not _is_dedup_race(exc):
                    raise
                continue
            result = tried
            break
    result.answer = parsed.answer
    return result


def _is_dedup_race(exc: IntegrityError) -> bool:
    """Whether exc is the (source, dedup_key) unique constraint, the one race a retry fixes."""
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    if constraint:
        return constraint == "alert_source_dedup"
    text = str(exc)
    return "alert_source_dedup" in text or (
        "UNIQUE constraint failed" in text
        and f"{Alert._meta.db_table}.source_id" in text
        and f"{Alert._meta.db_table}.dedup_key" in text
    )


def _store(
    source: AlertSource, parsed: list[ParsedAlert], now: datetime, result: IngestResult
) -> None:
    """Create or update the alerts in one transaction, adding their counts to result."""
    with transaction.atomic():
        keys = {p.dedup_key for p in parsed}
        # Row locks (PostgreSQL) serialise two deliveries of the same alert.
        existing = {
            a.dedup_key: a
            for a in Alert.objects.select_for_update().filter(source=source, dedup_key__in=keys)
        }
        new: dict[str, Alert] = {}
        changed: dict[str, Alert] = {}
        for p in parsed:
            digest = p.content_hash()
            severity = severity_normalise(p.source_severity, source.severity_mapping)
            row = existing.get(p.dedup_key) or new.get(p.dedup_key)
            if row is None:
                if p.update_only:
                    result.ignored += 1
                    continue
                new[p.dedup_key] = Alert(**new_values(source, p, severity, digest, now))
                result.created += 1
                continue
            if row.content_hash == digest:
                result.unchanged += 1  # a re-delivery: nothing changes
                continue
            apply_repeat(row, p, severity, digest, now)
            if row.pk is not None:
                if p.dedup_key not in changed:
                    result.updated += 1
                changed[p.dedup_key] = row
        if new:
            Alert.objects.bulk_create(list(new.values()))
        if changed:
            Alert.objects.bulk_update(list(changed.values()), UPDATE_FIELDS)
        ids = [a.pk for a in new.values()] + [a.pk for a in changed.values()]
        if ids and eager():
            # No broker: "after commit" would run inline anyway, so process in this same
            # transaction (one commit instead of three). A failure rolls back only the
            # savepoint and leaves the outbox row pending for the sweeper.
            outbox = IngestOutbox(source=source, alert_ids=ids)
            try:
                with transaction.atomic():
                    group_alerts(ids, now)
                outbox.processed_at = outbox.dispatched_at = now
            except Exception as exc:
                logger.exception("inline processing of %d alerts failed", len(ids))
                outbox.attempts, outbox.last_error = 1, f"{type(exc).__name__}: {exc}"[:1000]
            outbox.save()
            result.outbox_id = outbox.pk
            transaction.on_commit(sweep_when_eager)
        elif ids:
            outbox = IngestOutbox.objects.create(source=source, alert_ids=ids)
            result.outbox_id = outbox.pk
            transaction.on_commit(partial(outbox_dispatch, outbox_id=outbox.pk))
