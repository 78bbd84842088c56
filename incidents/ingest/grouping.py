"""Grouping stored alerts into incidents: join an open one, open one, or clear one.

Runs in the caller's transaction over a batch of alerts (an outbox row's, or several
claimed together), with a few queries per batch whatever its size. Opening an incident
announces `incident_alerts_changed` (the pipeline diagnoses it at once), and so do alerts
joining an incident that has a runbook (the pipeline refreshes it, debounced).

An alert joins an open incident by its group key, else by its service within the source's
window, else (no group key) by its label fingerprint within that window. A source opens at
most INGEST_STORM_MAX_INCIDENTS new incidents per INGEST_STORM_WINDOW_SECONDS; past that its
alerts join one "alert storm" incident, so one delivery of a thousand unrelated alerts
costs a bounded number of incidents and runbook generations.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from incidents.choices import AlertStatus, IncidentStatus
from incidents.events import alert_received_event, alerts_cleared_event, timeline_record_many
from incidents.models import Alert, AlertGroup, AlertSource, Incident
from incidents.services import (
    IncidentError,
    incident_declare,
    incident_set_severity,
    incident_transition,
)
from incidents.signals import announce, incident_alerts_changed

from .queue import PROCESS_ALERTS, eager, enqueue
from .severity import RANK

logger = logging.getLogger(__name__)

OPEN = Q(incident__status__in=[s for s in IncidentStatus.values if s != IncidentStatus.RESOLVED])


def alerts_process(*, alert_ids: list[int], now: datetime | None = None) -> None:
    """Process alerts again (suspended ones whose window has passed). Idempotent."""
    now = now or timezone.now()
    if not alert_ids:
        return
    with transaction.atomic():
        # SQLite: take the write lock before reading (no select_for_update there).
        Alert.objects.filter(pk=alert_ids[0]).update(last_seen=F("last_seen"))
        group_alerts(alert_ids, now)


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
    # (source, label fingerprint) → the open incident of that fingerprint, or None.
    by_fingerprint: dict[tuple[int, str], Incident | None] = field(default_factory=dict)
    fingerprints: dict[int, str] = field(default_factory=dict)  # alert pk → fingerprint
    # Per source, read when it first opens an incident in the batch: incidents opened in
    # the storm window, and its open storm incident (None: none).
    opened_recently: dict[int, int] = field(default_factory=dict)
    storms: dict[int, Incident | None] = field(default_factory=dict)

    def note(self, incident: Incident, alert: Alert) -> None:
        self.incidents[incident.pk] = incident
        self.received.setdefault(incident.pk, []).append(alert)


# What grouping reads of a batch's alerts: not the raw payload, annotations or hashes,
# which can be most of a row; of their incidents only what decides joining, clearing and
# severity.
_GROUPING_FIELDS = (
    "source_id",
    "incident__id",
    "incident__status",
    "incident__severity",
    "incident__resolved_at",
    "status",
    "severity",
    "title",
    "description",
    "service",
    "labels",
    "source_url",
    "group_key",
    "fired_at",
    "last_seen",
)


def group_alerts(alert_ids: list[int], now: datetime) -> None:
    """Group these alerts (one pass for the batch), in the caller's transaction."""
    heads = list(
        Alert.objects.filter(pk__in=alert_ids).values_list("source_id", "group_key", "service")
    )
    keys: set[tuple] = set()
    for source_id, group_key, service in heads:
        # Per source: the ceiling of new incidents and the fingerprints are decided per source.
        keys.add(("src", source_id))
        if group_key:
            keys.add(("g", source_id, group_key))
        if service:
            keys.add(("s", service))
    _serialise(keys)
    alerts = list(
        Alert.objects.select_related("incident")
        .only(*_GROUPING_FIELDS)
        .filter(pk__in=alert_ids)
        .order_by("pk")
    )
    # A batch has a source or two: one object each, not a joined copy per alert.
    sources = AlertSource.objects.in_bulk({source_id for source_id, _, _ in heads})
    for alert in alerts:
        alert.source = sources[alert.source_id]
    batch = _Batch(now=now)
    _prefetch(alerts, batch)
    for alert in alerts:
        _process_one(alert, batch)
    _finish(batch)


def label_fingerprint(alert: Alert) -> str:
    """A stable hash of what identifies an alert without a group key: its service and its
    labels minus the volatile ones (its title when no label is left)."""
    volatile = {name.lower() for name in settings.INGEST_VOLATILE_LABELS}
    labels = {k: v for k, v in (alert.labels or {}).items() if k.lower() not in volatile}
    identity = (
        {"service": alert.service, "labels": labels}
        if labels
        else {
            "service": alert.service,
            "title": alert.title,
        }
    )
    encoded = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


def _prefetch(alerts: list[Alert], b: _Batch) -> None:
    """Read, in a few queries for the whole batch, the open incidents that the batch's new
    alerts may join: by group key, the latest open group per service, by fingerprint."""
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
    keyless = [a for a in homeless if not a.group_key and a.source.group_window_seconds]
    for alert in keyless:
        b.fingerprints[alert.pk] = label_fingerprint(alert)
    if keyless:
        wanted = {(a.source_id, b.fingerprints[a.pk]) for a in keyless}
        b.by_fingerprint = dict.fromkeys(wanted)
        widest = max(a.source.group_window_seconds for a in keyless)
        rows = (
            AlertGroup.objects.filter(
                OPEN,
                source_id__in={s for s, _ in wanted},
                fingerprint__in={f for _, f in wanted},
                last_alert_at__gte=b.now - timedelta(seconds=widest),
            )
            .select_related("incident", "source")
            .order_by("-last_alert_at")
        )
        for group in rows:
            key = (group.source_id, group.fingerprint)
            recent = group.last_alert_at >= b.now - timedelta(
                seconds=group.source.group_window_seconds
            )
            if key in wanted and b.by_fingerprint[key] is None and recent:
                b.by_fingerprint[key] = group.incident


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
    incident = _find_incident(alert, b) or _open_or_storm(alert, b)
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
    if found is None and alert.pk in b.fingerprints:
        found = b.by_fingerprint.get((alert.source_id, b.fingerprints[alert.pk]))
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


def _open_or_storm(alert: Alert, b: _Batch) -> Incident:
    """A new incident, unless the source is past its ceiling: then its storm incident."""
    ceiling = settings.INGEST_STORM_MAX_INCIDENTS
    if ceiling > 0:
        source_id = alert.source_id
        if source_id not in b.opened_recently:
            since = b.now - timedelta(seconds=settings.INGEST_STORM_WINDOW_SECONDS)
            b.opened_recently[source_id] = AlertGroup.objects.filter(
                source_id=source_id, opened_at__gte=since, storm=False
            ).count()
        if b.opened_recently[source_id] >= ceiling:
            return _join_storm(alert, b)
    return _open_incident(alert, b)


def _join_storm(alert: Alert, b: _Batch) -> Incident:
    """The source's open storm incident (opened by this alert if there is none)."""
    source = alert.source
    if source.pk not in b.storms:
        group = (
            AlertGroup.objects.select_related("incident")
            .filter(OPEN, source=source, storm=True)
            .order_by("-opened_at")
            .first()
        )
        b.storms[source.pk] = group.incident if group else None
    incident = b.storms[source.pk]
    if incident is None:
        ceiling = settings.INGEST_STORM_MAX_INCIDENTS
        minutes = max(1, round(settings.INGEST_STORM_WINDOW_SECONDS / 60))
        incident = incident_declare(
            title=f"Alert storm from {source.name}"[:200],
            description=(
                f"{source.name} opened {ceiling} incidents within {minutes} minutes. Its "
                "further alerts are collected here, each delivery counted on the timeline, "
                "until the storm passes."
            ),
            severity=alert.severity,
            service="",
            actor=None,
            generate_runbook=False,  # asked for through incident_alerts_changed
        )
        AlertGroup.objects.create(
            incident=incident, source=source, storm=True, opened_at=b.now, last_alert_at=b.now
        )
        b.storms[source.pk] = incident
        b.opened.add(incident.pk)
        announce(incident_alerts_changed, incident_id=incident.pk, opened=True)
    if alert.group_key:
        b.by_group[(alert.source_id, alert.group_key)] = incident
    return incident


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
        generate_runbook=False,  # asked for through incident_alerts_changed
    )
    AlertGroup.objects.create(
        incident=incident,
        source=alert.source,
        group_key=alert.group_key,
        service=alert.service[:100],
        fingerprint=b.fingerprints.get(alert.pk, ""),
        opened_at=b.now,
        last_alert_at=b.now,
    )
    b.opened.add(incident.pk)
    if alert.source_id in b.opened_recently:
        b.opened_recently[alert.source_id] += 1
    if alert.group_key:
        b.by_group[(alert.source_id, alert.group_key)] = incident
    if alert.pk in b.fingerprints:
        b.by_fingerprint[(alert.source_id, b.fingerprints[alert.pk])] = incident
    if alert.service and alert.source.group_window_seconds:
        b.by_service[alert.service] = incident
    # The pipeline asks for its evidence and runbook at once (under the ceiling).
    announce(incident_alerts_changed, incident_id=incident.pk, opened=True)
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
    # The groups of incidents this batch did not open, in one read (locking the rows, so
    # a concurrent batch sees a cleared one cleared no more, and an owed refresh owed):
    # incidents whose alerts had cleared and fire again, and those that owe a refresh.
    known = firing_in - b.opened
    groups = (
        AlertGroup.objects.select_for_update()
        .filter(incident_id__in=known)
        .values_list("incident_id", "cleared_at", "runbook_requested_at", "refresh_wanted_at")
        if known
        else []
    )
    refired: set[int] = set()
    owing: dict[int, bool] = {}  # incident → whether this batch starts owing its refresh
    for incident_id, cleared_at, requested_at, wanted_at in groups:
        if cleared_at is not None:
            refired.add(incident_id)
        if requested_at is not None and (incident_id in b.assign or cleared_at is not None):
            owing[incident_id] = wanted_at is None
    if refired:
        AlertGroup.objects.filter(incident_id__in=refired).update(cleared_at=None)
    if any(owing.values()):
        AlertGroup.objects.filter(
            incident_id__in=[i for i, first in owing.items() if first]
        ).update(refresh_wanted_at=b.now)
    events = []
    for incident_id, alerts in b.received.items():
        incident = b.incidents[incident_id]
        firing = firing_by[incident_id]
        resolved = len(alerts) - len(firing)
        sources = sorted({a.source.slug for a in alerts})
        events.append(
            alert_received_event(
                incident=incident,
                source_slug=sources[0],
                sources=sources,
                count=len(alerts),
                firing=len(firing),
                resolved=resolved,
                refired=incident_id in refired,
                alerts=[
                    {"id": a.pk, "title": a.title, "status": a.status, "severity": a.severity}
                    for a in alerts[:20]
                ],
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
    if b.pending and not eager():
        transaction.on_commit(partial(_schedule_pending, pending=b.pending))
    # Alerts joined (or fired again on) an incident that has a runbook: the pipeline
    # refreshes it once the debounce allows (at most one per window, none mid-generation).
    for incident_id, first in owing.items():
        announce(incident_alerts_changed, incident_id=incident_id, opened=False, first=first)


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
    alerts_cleared_event(incident=incident, source_slug=source.slug, alerts=total)
    if source.move_to_monitoring_when_cleared and incident.status in (
        IncidentStatus.INVESTIGATING,
        IncidentStatus.IDENTIFIED,
    ):
        try:
            incident_transition(incident=incident, to_status=IncidentStatus.MONITORING, actor=None)
        except IncidentError as exc:
            logger.info("incident %s not moved to monitoring: %s", incident.pk, exc)


def _schedule_pending(*, pending: list[tuple[int, float]]) -> None:
    countdown = max(1, int(max(wait for _, wait in pending)) + 1)
    try:
        enqueue(PROCESS_ALERTS, args=[[pk for pk, _ in pending]], countdown=countdown)
    except Exception as exc:  # the sweeper finds them when they are due
        logger.warning("suspended alerts not scheduled: %s", type(exc).__name__)
