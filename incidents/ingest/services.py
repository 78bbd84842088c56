"""The ingest pipeline: parse → normalise → deduplicate → (outbox) → group → incident → timeline.

The request handler only runs `alert_ingest`: it stores the alerts and an outbox row in
one transaction and answers. Everything after (grouping, opening or updating incidents,
clearing, asking for a runbook) runs from the outbox row once the transaction commits,
through Celery, or inline when Celery is eager; `ingest_sweep` picks up whatever a
down broker or a dead worker left behind, so an accepted alert is never lost.
"""

import functools
import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from incidents.choices import AlertStatus, IncidentStatus, TimelineKind
from incidents.events import timeline_event, timeline_record, timeline_record_many
from incidents.models import Alert, AlertGroup, AlertSource, Incident, IngestOutbox
from incidents.services import (
    IncidentError,
    incident_declare,
    incident_set_severity,
    incident_transition,
)

from .base import ParsedAlert, PayloadError, clean_payload
from .dispatch import DISPATCHER, Sent
from .registry import parse_payload
from .severity import RANK, severity_normalise

logger = logging.getLogger(__name__)

OPEN = Q(incident__status__in=[s for s in IncidentStatus.values if s != IncidentStatus.RESOLVED])
ACTIVE = (AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED)


def _eager() -> bool:
    from incident_response.celery import app

    return bool(app.conf.task_always_eager)


# --- 1. the request: store and answer ----------------------------------------


@dataclass
class IngestResult:
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ignored: int = 0
    outbox_id: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)


_UPDATE_FIELDS = [
    "status",
    "severity",
    "source_severity",
    "title",
    "description",
    "service",
    "labels",
    "annotations",
    "source_url",
    "starts_at",
    "ends_at",
    "last_seen",
    "fired_at",
    "count",
    "group_key",
    "fingerprint",
    "content_hash",
    "raw",
]


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
    if _insert_directly(todo):
        todo = _insert_new(source, todo, now, result)
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


def _insert_directly(parsed: list[ParsedAlert]) -> bool:
    """Whether the one-statement insert applies: PostgreSQL, a worker to process later, and
    only alerts that may create rows, each key once (repeats take the general path)."""
    return (
        bool(parsed)
        and connection.vendor == "postgresql"
        and not _eager()
        and not any(p.update_only for p in parsed)
        and len({p.dedup_key for p in parsed}) == len(parsed)
    )


def _insert_new(
    source: AlertSource, parsed: list[ParsedAlert], now: datetime, result: IngestResult
) -> list[ParsedAlert]:
    """Insert the alerts whose keys are new, and their outbox row, in one statement.

    Most deliveries bring new alerts; for them this is the whole request: one round trip,
    atomic on its own (a data-modifying CTE), committed with the statement in autocommit.
    Keys that exist already (or that a concurrent delivery is inserting: ON CONFLICT waits
    for it) come back for the general path, which compares and updates them.
    """
    rows = [
        _new_values(
            source, p, severity_normalise(p.source_severity, source.severity_mapping),
            p.content_hash(), now,
        )
        for p in parsed
    ]  # fmt: skip
    sql, fields = _insert_statement()
    # One array per column: the statement has one shape for any number of alerts, so
    # PostgreSQL plans it once per connection (prepared) instead of once per delivery.
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy costs per attribute
    params: list[Any] = [[f.get_db_prep_save(row[f.attname], db) for row in rows] for f in fields]
    params += [source.pk, now]
    inserted = _execute_prepared(sql, params)
    if not inserted:
        return parsed
    result.created += len(inserted)
    result.outbox_id = inserted[0][2]
    transaction.on_commit(partial(outbox_dispatch, outbox_id=result.outbox_id))
    done = {key for _, key, _ in inserted}
    return [p for p in parsed if p.dedup_key not in done]


@functools.cache
def _insert_statement() -> tuple[str, list[models.Field]]:
    """The insert of new alerts and their outbox row. Identifiers come from the models'
    metadata; every value is a bound parameter."""
    fields = [f for f in Alert._meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
    columns = ", ".join(qn(f.column) for f in fields)
    box = IngestOutbox._meta.db_table
    sql = (
        f"WITH ins AS (INSERT INTO {qn(Alert._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (source_id, dedup_key) DO NOTHING RETURNING id, dedup_key), "
        f"box AS (INSERT INTO {qn(box)} (source_id, alert_ids, created_at, attempts, "
        "last_error) SELECT %s, jsonb_agg(id ORDER BY id), %s, 0, '' FROM ins "
        "HAVING count(*) > 0 RETURNING id) "
        "SELECT ins.id, ins.dedup_key, (SELECT id FROM box) FROM ins"
    )
    return sql, fields


def _execute_prepared(sql: str, params: list[Any]) -> list[tuple]:
    """Run one statement as a server-side prepared statement on Django's connection.

    Django's own cursors bind parameters on the client and never prepare; this keeps its
    transaction handling, error wrapping and query log.
    """
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, params, prepare=True)
        rows = cur.fetchall()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": sql, "time": f"{time.monotonic() - started:.3f}", "params": "(arrays)"}
        )
    return rows


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


def _new_values(
    source: AlertSource, p: ParsedAlert, severity: str, digest: str, now: datetime
) -> dict[str, Any]:
    """A new alert's columns by attname: every one the direct insert writes (no model
    instance on that path), and Alert(**values) for the general path."""
    return dict(
        source_id=source.pk,
        incident_id=None,
        dedup_key=p.dedup_key,
        fingerprint=p.fingerprint,
        content_hash=digest,
        status=p.status,
        severity=severity,
        source_severity=p.source_severity,
        title=p.title,
        description=p.description,
        service=p.service,
        labels=p.labels,
        annotations=p.annotations,
        source_url=p.source_url,
        starts_at=p.starts_at,
        ends_at=(p.ends_at or now) if p.status == AlertStatus.RESOLVED else None,
        first_seen=now,
        last_seen=now,
        fired_at=now if p.status in ACTIVE else None,
        count=1,
        group_key=p.group_key,
        raw=p.raw,
    )


def _apply(row: Alert, p: ParsedAlert, severity: str, digest: str, now: datetime) -> None:
    """A repeat of a known alert: update it in place, counting new firing occurrences."""
    was = row.status
    row.status = p.status
    if not p.update_only:
        row.severity = severity
        row.source_severity = p.source_severity
        row.title = p.title
        row.description = p.description
        row.service = p.service
        row.labels = p.labels
        row.annotations = p.annotations
        row.source_url = p.source_url
        row.starts_at = p.starts_at or row.starts_at
        row.group_key = p.group_key
        row.fingerprint = p.fingerprint or row.fingerprint
        row.raw = p.raw
    if row.status == AlertStatus.RESOLVED:
        row.ends_at = p.ends_at or now
    else:
        row.ends_at = None
        if was == AlertStatus.RESOLVED or row.fired_at is None:
            row.fired_at = now  # a new firing cycle: its suspend window starts now
        if row.status == AlertStatus.FIRING:
            row.count += 1
    row.content_hash = digest
    row.last_seen = now


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
                new[p.dedup_key] = Alert(**_new_values(source, p, severity, digest, now))
                result.created += 1
                continue
            if row.content_hash == digest:
                result.unchanged += 1  # a re-delivery: nothing changes
                continue
            _apply(row, p, severity, digest, now)
            if row.pk is not None:
                if p.dedup_key not in changed:
                    result.updated += 1
                changed[p.dedup_key] = row
        if new:
            Alert.objects.bulk_create(list(new.values()))
        if changed:
            Alert.objects.bulk_update(list(changed.values()), _UPDATE_FIELDS)
        ids = [a.pk for a in new.values()] + [a.pk for a in changed.values()]
        if ids and _eager():
            # No broker: "after commit" would run inline anyway, so process in this same
            # transaction (one commit instead of three). A failure rolls back only the
            # savepoint and leaves the outbox row pending for the sweeper.
            outbox = IngestOutbox(source=source, alert_ids=ids)
            try:
                with transaction.atomic():
                    _process(ids, now)
                outbox.processed_at = outbox.dispatched_at = now
            except Exception as exc:
                logger.exception("inline processing of %d alerts failed", len(ids))
                outbox.attempts, outbox.last_error = 1, f"{type(exc).__name__}: {exc}"[:1000]
            outbox.save()
            result.outbox_id = outbox.pk
            transaction.on_commit(_eager_sweep)
        elif ids:
            outbox = IngestOutbox.objects.create(source=source, alert_ids=ids)
            result.outbox_id = outbox.pk
            transaction.on_commit(partial(outbox_dispatch, outbox_id=outbox.pk))


# --- 2. after commit: dispatch the outbox row ---------------------------------

_last_eager_sweep = 0.0


def outbox_dispatch(*, outbox_id: int) -> bool:
    """Hand the committed row to the worker (coalesced). If the broker is down the row
    waits for the sweeper, and says why."""
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
    if _eager():
        _eager_sweep()  # processed inline by now (the claim stamped dispatched_at)
    return True


def _eager_sweep() -> None:
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


def outbox_record_failure(*, outbox_id: int, error: BaseException) -> None:
    IngestOutbox.objects.filter(pk=outbox_id, processed_at__isnull=True).update(
        attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:1000]
    )


# --- 3. processing: group, open or update incidents, clear ---------------------


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
        _process(list(dict.fromkeys(alert_ids)), now)
    return True


def alerts_process(*, alert_ids: list[int], now: datetime | None = None) -> None:
    """Process alerts again (suspended ones whose window has passed). Idempotent."""
    now = now or timezone.now()
    if not alert_ids:
        return
    with transaction.atomic():
        # SQLite: take the write lock before reading (no select_for_update there).
        Alert.objects.filter(pk=alert_ids[0]).update(last_seen=F("last_seen"))
        _process(alert_ids, now)


_GLOBAL_LOCK = 0x1A1E_57_0000


def _lock_id(*parts: Any) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _serialise(keys: set[tuple]) -> None:
    """PostgreSQL advisory locks per group key and service, so two workers cannot both
    decide to open an incident for the same group. Many keys: one exclusive global lock."""
    if connection.vendor != "postgresql" or not keys:
        return
    with connection.cursor() as cur:
        if len(keys) > 32:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_GLOBAL_LOCK])
            return
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_GLOBAL_LOCK])
        # One round trip; taken in key order (the sorted subquery), so two batches
        # sharing keys queue behind each other instead of deadlocking.
        cur.execute(
            "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS ordered) AS taken",
            [sorted(_lock_id(*k) for k in keys)],
        )


@dataclass
class _Batch:
    now: datetime
    by_group: dict[tuple, Incident | None] = field(default_factory=dict)
    by_service: dict[str, Incident] = field(default_factory=dict)
    # The latest open group of each service (None: none), read once per batch.
    service_groups: dict[str, AlertGroup | None] = field(default_factory=dict)
    received: dict[int, list[Alert]] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    opened: set[int] = field(default_factory=set)
    clear: dict[int, AlertSource] = field(default_factory=dict)
    pending: list[tuple[int, float]] = field(default_factory=list)
    assign: dict[int, list[int]] = field(default_factory=dict)

    def note(self, incident: Incident, alert: Alert) -> None:
        self.incidents[incident.pk] = incident
        self.received.setdefault(incident.pk, []).append(alert)


def _process(alert_ids: list[int], now: datetime) -> None:
    heads = list(
        Alert.objects.filter(pk__in=alert_ids).values_list("source_id", "group_key", "service")
    )
    keys: set[tuple] = set()
    for source_id, group_key, service in heads:
        if group_key:
            keys.add(("g", source_id, group_key))
        if service:
            keys.add(("s", service))
    _serialise(keys)
    alerts = list(
        Alert.objects.select_related("source", "incident").filter(pk__in=alert_ids).order_by("pk")
    )
    batch = _Batch(now=now)
    _prefetch(alerts, batch)
    for alert in alerts:
        _process_one(alert, batch)
    _finish(batch)


def _prefetch(alerts: list[Alert], b: _Batch) -> None:
    """Read, in two or three queries for the whole batch, the open incidents that the
    batch's new alerts may join: by group key, and the latest open group per service."""
    homeless = [
        a
        for a in alerts
        if a.status != AlertStatus.RESOLVED
        and (a.incident is None or a.incident.status == IncidentStatus.RESOLVED)
    ]
    group_keys = {(a.source_id, a.group_key) for a in homeless if a.group_key}
    if group_keys:
        found: dict[tuple, int] = {}
        rows = Alert.objects.filter(
            OPEN,
            source_id__in={s for s, _ in group_keys},
            group_key__in={g for _, g in group_keys},
        ).values_list("source_id", "group_key", "incident_id")
        for source_id, group_key, incident_id in rows:
            key = (source_id, group_key)
            if key in group_keys and incident_id > found.get(key, 0):
                found[key] = incident_id  # the newest open incident of the group
        incidents = Incident.objects.in_bulk(set(found.values()))
        for key in group_keys:
            b.by_group[key] = incidents.get(found.get(key, 0))
    windows = [a.source.group_window_seconds for a in homeless if a.service]
    services = {a.service for a in homeless if a.service and a.source.group_window_seconds}
    if services:
        b.service_groups = dict.fromkeys(services)
        latest = (
            AlertGroup.objects.select_related("incident")
            .filter(
                OPEN,
                service__in=services,
                last_alert_at__gte=b.now - timedelta(seconds=max(windows)),
            )
            .order_by("-last_alert_at")
        )
        for group in latest:
            if b.service_groups.get(group.service) is None:
                b.service_groups[group.service] = group


def _process_one(alert: Alert, b: _Batch) -> None:
    incident = alert.incident
    is_open = incident is not None and incident.status != IncidentStatus.RESOLVED
    if alert.status == AlertStatus.RESOLVED:
        if is_open:
            b.note(incident, alert)
            b.clear[incident.pk] = alert.source
        return  # resolved before it ever opened anything (suspend): nothing to do
    if is_open:
        b.note(incident, alert)
        return
    if incident is not None and incident.resolved_at and alert.last_seen <= incident.resolved_at:
        return  # a person resolved the incident while this occurrence was firing
    suspend = alert.source.suspend_seconds
    if suspend and alert.fired_at:
        due = alert.fired_at + timedelta(seconds=suspend)
        if b.now < due:
            b.pending.append((alert.pk, (due - b.now).total_seconds()))
            return
    incident = _find_incident(alert, b) or _open_incident(alert, b)
    b.assign.setdefault(incident.pk, []).append(alert.pk)  # one UPDATE per incident, in _finish
    alert.incident = incident
    b.note(incident, alert)


def _find_incident(alert: Alert, b: _Batch) -> Incident | None:
    if alert.group_key:
        found = b.by_group.get((alert.source_id, alert.group_key))
        if found is not None:
            return found
    found = _find_by_service(alert, b)
    if found is not None and alert.group_key:
        # The next alert of this group in the batch joins it too.
        b.by_group[(alert.source_id, alert.group_key)] = found
    return found


def _find_by_service(alert: Alert, b: _Batch) -> Incident | None:
    window = alert.source.group_window_seconds
    if not (alert.service and window):
        return None
    if alert.service in b.by_service:
        return b.by_service[alert.service]
    group = b.service_groups.get(alert.service)
    # The latest open group: if it is outside this source's window, every other one is too.
    if group is not None and group.last_alert_at >= b.now - timedelta(seconds=window):
        b.by_service[alert.service] = group.incident
        return group.incident
    return None


def _open_incident(alert: Alert, b: _Batch) -> Incident:
    lines = [alert.description] if alert.description else []
    lines.append(f"Opened by the alert source {alert.source.name}.")
    if alert.source_url:
        lines.append(f"Source: {alert.source_url}")
    incident = incident_declare(
        title=alert.title,
        description="\n\n".join(lines),
        severity=alert.severity,
        service=alert.service,
        actor=None,
        generate_runbook=False,  # debounced below: a storm asks once, when it calms down
    )
    AlertGroup.objects.create(
        incident=incident,
        source=alert.source,
        group_key=alert.group_key,
        service=alert.service[:100],
        opened_at=b.now,
        last_alert_at=b.now,
    )
    b.opened.add(incident.pk)
    if alert.group_key:
        b.by_group[(alert.source_id, alert.group_key)] = incident
    if alert.service and alert.source.group_window_seconds:
        b.by_service[alert.service] = incident
    transaction.on_commit(partial(runbook_schedule, incident_id=incident.pk))
    return incident


def _finish(b: _Batch) -> None:
    if len(b.assign) == 1:
        [(incident_id, pks)] = b.assign.items()
        Alert.objects.filter(pk__in=pks).update(incident_id=incident_id)
    elif b.assign:
        # One UPDATE for the whole batch, however many incidents it touched.
        Alert.objects.filter(pk__in=[pk for pks in b.assign.values() for pk in pks]).update(
            incident_id=Case(
                *(When(pk__in=pks, then=Value(iid)) for iid, pks in b.assign.items()),
                output_field=models.BigIntegerField(),
            )
        )
    firing_by = {
        iid: [a for a in alerts if a.status != AlertStatus.RESOLVED]
        for iid, alerts in b.received.items()
    }
    firing_in = {iid for iid, firing in firing_by.items() if firing}
    # Incidents whose alerts had cleared and fire again: one read (locking the rows, so a
    # concurrent batch sees them cleared no more), one write.
    known = firing_in - b.opened
    refired = (
        set(
            AlertGroup.objects.select_for_update()
            .filter(incident_id__in=known, cleared_at__isnull=False)
            .values_list("incident_id", flat=True)
        )
        if known
        else set()
    )
    if refired:
        AlertGroup.objects.filter(incident_id__in=refired).update(cleared_at=None)
    events = []
    for incident_id, alerts in b.received.items():
        incident = b.incidents[incident_id]
        firing = firing_by[incident_id]
        resolved = len(alerts) - len(firing)
        sources = sorted({a.source.slug for a in alerts})
        parts = []
        if firing:
            parts.append(f"{len(firing)} firing")
        if resolved:
            parts.append(f"{resolved} resolved")
        again = " (firing again after the alerts had cleared)" if incident_id in refired else ""
        events.append(
            timeline_event(
                incident=incident,
                kind=TimelineKind.ALERT_RECEIVED,
                actor_label=f"source:{sources[0]}"[:64],
                message=f"{len(alerts)} alert update(s): {', '.join(parts)}{again}",
                payload={
                    "sources": sources,
                    "firing": len(firing),
                    "resolved": resolved,
                    "alerts": [
                        {"id": a.pk, "title": a.title, "status": a.status, "severity": a.severity}
                        for a in alerts[:20]
                    ],
                },
            )
        )
    timeline_record_many(events)
    for incident_id, firing in firing_by.items():
        incident = b.incidents[incident_id]
        if firing:
            top = min((a.severity for a in firing), key=lambda s: RANK.get(s, 9))
            if RANK.get(top, 9) < RANK.get(incident.severity, 9):
                incident_set_severity(incident=incident, severity=top, actor=None)
    if firing_in:
        # Sub-second precision buys nothing here and would make every delivery to a busy
        # incident wait for the same row lock.
        AlertGroup.objects.filter(
            incident_id__in=firing_in, last_alert_at__lt=b.now - timedelta(seconds=1)
        ).update(last_alert_at=b.now)
    for incident_id, source in b.clear.items():
        if incident_id not in firing_in:
            _maybe_clear(b.incidents[incident_id], source, b.now)
    if b.pending and not _eager():
        transaction.on_commit(partial(_schedule_pending, pending=b.pending))


def _maybe_clear(incident: Incident, source: AlertSource, now: datetime) -> None:
    """Every alert of the incident has resolved: say so; maybe move it to monitoring."""
    if Alert.objects.filter(incident=incident).exclude(status=AlertStatus.RESOLVED).exists():
        return
    group, _ = AlertGroup.objects.get_or_create(
        incident=incident,
        defaults={"source": source, "opened_at": now, "last_alert_at": now},
    )
    if not AlertGroup.objects.filter(pk=group.pk, cleared_at__isnull=True).update(cleared_at=now):
        return
    total = Alert.objects.filter(incident=incident).count()
    timeline_record(
        incident=incident,
        kind=TimelineKind.ALERTS_CLEARED,
        actor_label=f"source:{source.slug}"[:64],
        message=f"Alerts cleared: all {total} alert(s) have resolved. A person resolves the incident.",
        payload={"alerts": total},
    )
    if source.move_to_monitoring_when_cleared and incident.status in (
        IncidentStatus.INVESTIGATING,
        IncidentStatus.IDENTIFIED,
    ):
        try:
            incident_transition(incident=incident, to_status=IncidentStatus.MONITORING, actor=None)
        except IncidentError as exc:
            logger.info("incident %s not moved to monitoring: %s", incident.pk, exc)


def _schedule_pending(*, pending: list[tuple[int, float]]) -> None:
    from incidents.tasks import process_alerts

    countdown = max(1, int(max(wait for _, wait in pending)) + 1)
    try:
        process_alerts.apply_async(
            args=[[pk for pk, _ in pending]], countdown=countdown, retry=False
        )
    except Exception as exc:  # the sweeper finds them when they are due
        logger.warning("suspended alerts not scheduled: %s", type(exc).__name__)


# --- 4. runbooks: one per new incident, debounced, under a ceiling -------------


def _active_generations() -> int:
    from runbooks.choices import RunbookStatus
    from runbooks.models import Runbook

    return Runbook.objects.filter(
        status__in=[RunbookStatus.QUEUED, RunbookStatus.GENERATING]
    ).count()


def _runbook_waits() -> tuple[timedelta, timedelta]:
    """(quiet, longest): ask once alerts were quiet this long, or at most this long after opening."""
    return (
        timedelta(seconds=settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS),
        timedelta(seconds=settings.INGEST_RUNBOOK_MAX_WAIT_SECONDS),
    )


def runbook_schedule(*, incident_id: int) -> None:
    """After an incident opens: eager asks at once; a worker waits for the storm to calm."""
    if _eager():
        runbook_debounce(incident_id=incident_id, immediate=True)
        return
    from incidents.tasks import runbook_debounce_task

    try:
        runbook_debounce_task.apply_async(
            args=[incident_id],
            countdown=settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS,
            retry=False,
        )
    except Exception as exc:  # the sweeper asks once it is due
        logger.warning("runbook debounce for incident %s not scheduled: %s", incident_id, exc)


def runbook_debounce(
    *, incident_id: int, now: datetime | None = None, immediate: bool = False
) -> float | None:
    """Ask for the incident's runbook once, when its alerts have been quiet long enough
    (or the wait hit its ceiling) and fewer than N generations are running.

    Returns seconds to wait before asking again, or None when there is nothing left to do.
    """
    now = now or timezone.now()
    group = AlertGroup.objects.select_related("incident").filter(incident_id=incident_id).first()
    if group is None or group.runbook_requested_at is not None:
        return None
    if not immediate:
        quiet, longest = _runbook_waits()
        due = min(group.last_alert_at + quiet, group.opened_at + longest)
        if now < due:
            return max((due - now).total_seconds(), 0.5)
    if _active_generations() >= settings.INGEST_MAX_CONCURRENT_GENERATIONS:
        return float(settings.INGEST_GENERATION_RETRY_SECONDS)
    with transaction.atomic():
        # Exactly one caller wins the request, however many tasks and sweeps race here.
        won = AlertGroup.objects.filter(pk=group.pk, runbook_requested_at__isnull=True).update(
            runbook_requested_at=now
        )
        incident = group.incident
        if not won or incident.status == IncidentStatus.RESOLVED or incident.runbooks.exists():
            return None
        from runbooks.services import runbook_request

        runbook_request(incident=incident, actor=None)
    return None


# --- 5. the sweeper -------------------------------------------------------------


@dataclass
class SweepReport:
    outbox_processed: int = 0
    outbox_failed: int = 0
    alerts_due: int = 0
    runbooks_checked: int = 0
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

    quiet, longest = _runbook_waits()
    waiting = (
        AlertGroup.objects.filter(runbook_requested_at__isnull=True)
        .filter(Q(last_alert_at__lte=now - quiet) | Q(opened_at__lte=now - longest))
        .exclude(incident__status=IncidentStatus.RESOLVED)
        .values_list("incident_id", flat=True)[:limit]
    )
    for incident_id in list(waiting):
        runbook_debounce(incident_id=incident_id, now=now)
        report.runbooks_checked += 1
    return report
