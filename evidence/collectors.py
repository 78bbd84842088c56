"""The collectors: each reads one kind of context, read-only, and returns its findings.

A collector gets a `Scope` (plain data, no ORM objects) and a deadline, and returns
a list of `Finding`s. Database collectors read through the ORM; the remote ones read
through the installed `Observability` interface.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from incidents.choices import AlertStatus, ChangeStatus, IncidentStatus
from incidents.compiled import Compiled
from incidents.models import Alert, ChangeEvent

from . import changepoint, similar, templates
from .choices import Collector, EvidenceStatus
from .scrub import scrub_labels, scrub_text
from .sources import ServiceReaders

CHANGES_BEFORE = timedelta(hours=2)
CHANGES_AFTER = timedelta(minutes=5)
METRICS_BEFORE = timedelta(minutes=60)
METRICS_AFTER = timedelta(minutes=30)
LOG_BASELINE = timedelta(minutes=60)
# Lines this long before onset already count as the incident: onsets are approximate.
LOG_LEAD = timedelta(minutes=5)
METRIC_POINTS = 60
ALERTS_SHOWN = 20
LOG_LIMIT = 1000


@dataclass
class Scope:
    incident_id: int
    service: str
    title: str
    description: str
    onset: datetime
    now: datetime
    dependencies: list[str] = field(default_factory=list)
    readers: ServiceReaders | None = None
    # (title, labels) of the incident's latest alerts, when the caller read them with the
    # incident (see selectors.own_alert_texts); else the similar collector reads them.
    own_alerts: list[tuple[str, dict]] | None = None


@dataclass
class Finding:
    collector: str
    summary: str
    status: str = EvidenceStatus.OK
    query: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None
    data: dict = field(default_factory=dict)
    duration_ms: int = 0


def _ago(minutes: float) -> str:
    if minutes < 0:
        return f"{-minutes:.0f} min after onset"
    return f"{minutes:.0f} min before onset"


def _changes_query(shape: None, *, services: list[str], start: datetime, end: datetime) -> QuerySet:
    return ChangeEvent.objects.filter(
        service__in=services, started_at__gte=start, started_at__lte=end
    ).order_by("-started_at", "-id")[:20]


# Every incident's context asks these: built once per number of services, not per call.
_changes = Compiled(_changes_query)


def collect_changes(scope: Scope, deadline: float) -> list[Finding]:
    start, end = scope.onset - CHANGES_BEFORE, scope.onset + CHANGES_AFTER
    services = [scope.service, *scope.dependencies]
    rows = _changes.rows(services=[s for s in services if s], start=start, end=end)
    query = f"changes of {', '.join(s for s in services if s) or '(no service)'}"
    if not rows:
        return [
            Finding(
                Collector.CHANGES,
                "No deploy, config, flag or scale change in the 2 h before onset",
                EvidenceStatus.EMPTY,
                query,
                start,
                end,
                {"dependencies": list(scope.dependencies)},
            )
        ]
    findings = []
    for row in rows:
        minutes = (scope.onset - row.started_at).total_seconds() / 60
        own = row.service == scope.service
        version = f" {row.version}" if row.version else ""
        previous = f" (from {row.previous_version})" if row.previous_version else ""
        failed = " (failed)" if row.status == ChangeStatus.FAILED else ""
        findings.append(
            Finding(
                Collector.CHANGES,
                f"{row.get_kind_display()} of {row.service}{version}{previous}{failed}, "
                f"{_ago(minutes)}",
                query=query,
                window_start=start,
                window_end=end,
                data={
                    "change_id": row.pk,
                    "service": row.service,
                    "own_service": own,
                    "kind": row.kind,
                    "status": row.status,
                    "version": scrub_text(row.version),
                    "previous_version": scrub_text(row.previous_version),
                    "author": scrub_text(row.author),
                    "link": row.link,
                    "started_at": row.started_at.isoformat(),
                    "minutes_before_onset": round(minutes, 1),
                    "origin": row.origin,
                    "dependencies": list(scope.dependencies),
                },
            )
        )
    return findings


def _alerts_query(shape: None, *, incident_id: int, services: list[str]) -> QuerySet:
    wanted = Q(incident_id=incident_id)
    if services:
        wanted |= Q(service__in=services, status=AlertStatus.FIRING)
    return Alert.objects.filter(wanted).order_by("-last_seen", "-id")[:ALERTS_SHOWN]


_alerts = Compiled(_alerts_query)


def collect_alerts(scope: Scope, deadline: float) -> list[Finding]:
    # The incident's own alerts, and what else fires on the service or on a service it
    # depends on (a dependency failing upstream alerts on its own name).
    services = [s for s in (scope.service, *scope.dependencies) if s]
    rows = _alerts.rows(incident_id=scope.incident_id, services=services)
    query = (
        f"alerts of incident #{scope.incident_id} and firing alerts of {', '.join(services) or '-'}"
    )
    if not rows:
        return [
            Finding(Collector.ALERTS, "No alert for this incident", EvidenceStatus.EMPTY, query)
        ]
    return [
        Finding(
            Collector.ALERTS,
            scrub_text(f"{row.status} alert: {row.title}")[:500],
            query=query,
            data={
                "alert_id": row.pk,
                "own": row.incident_id == scope.incident_id,
                "title": scrub_text(row.title),
                "description": scrub_text(row.description)[:1000],
                "service": row.service,
                "status": row.status,
                "severity": row.severity,
                "labels": scrub_labels(row.labels),
                "starts_at": row.starts_at.isoformat() if row.starts_at else None,
            },
        )
        for row in rows
    ]


def collect_metrics(scope: Scope, deadline: float) -> list[Finding]:
    source = scope.readers
    signals = source.signals if source and scope.service else {}
    if not source or not signals:
        return [
            Finding(
                Collector.METRICS,
                f"No golden-signal queries in the catalog for {scope.service or 'this service'}",
                EvidenceStatus.EMPTY,
            )
        ]
    start = scope.onset - METRICS_BEFORE
    end = min(scope.onset + METRICS_AFTER, max(scope.now, scope.onset))
    step = max(15.0, (end - start).total_seconds() / METRIC_POINTS)
    findings = []
    for signal, expr in sorted(signals.items()):
        if time.monotonic() >= deadline:
            findings.append(
                Finding(Collector.METRICS, f"{signal}: not read, out of time", "timeout", expr)
            )
            continue
        try:
            points = source.metric_range(
                expr,
                start=start.timestamp(),
                end=end.timestamp(),
                step=step,
                deadline=deadline,
            )
        except Exception as exc:  # one signal failing leaves the others
            findings.append(
                Finding(
                    Collector.METRICS,
                    f"{signal}: {scrub_text(str(exc))[:200]}",
                    EvidenceStatus.ERROR,
                    expr,
                    start,
                    end,
                )
            )
            continue
        if not points:
            findings.append(
                Finding(
                    Collector.METRICS, f"{signal}: no data", EvidenceStatus.EMPTY, expr, start, end
                )
            )
            continue
        found = changepoint.detect(points)
        data = {
            "signal": signal,
            "points": [[round(t, 3), v] for t, v in points],
            "change": found.as_dict() if found else None,
        }
        if found:
            minutes = (scope.onset.timestamp() - found.time) / 60
            pct = f"{found.change_pct:+.0f}%" if found.change_pct is not None else "from zero"
            data["onset_minutes_before_incident"] = round(minutes, 1)
            summary = (
                f"{signal} moved {found.direction} {pct} ({found.before:g} → {found.after:g}), "
                f"{_ago(minutes)}"
            )
        else:
            summary = f"{signal}: no significant change around onset"
        findings.append(
            Finding(Collector.METRICS, summary, EvidenceStatus.OK, expr, start, end, data)
        )
    return findings


def collect_logs(scope: Scope, deadline: float) -> list[Finding]:
    source = scope.readers
    start = scope.onset - LOG_BASELINE
    end = max(scope.now, scope.onset)
    lines = (
        source.log_lines(
            start=start.timestamp(),
            end=end.timestamp(),
            limit=LOG_LIMIT,
            deadline=deadline,
        )
        if source and scope.service
        else None
    )
    query = f"error lines of {scope.service or '-'}"
    if lines is None:
        return [
            Finding(
                Collector.LOGS,
                f"No log target for {scope.service or 'this service'}",
                EvidenceStatus.EMPTY,
                query,
            )
        ]
    clean = [(when, scrub_text(source.scrub(line))) for when, line in lines]
    mined = templates.mine(clean, baseline_before=(scope.onset - LOG_LEAD).timestamp())[:10]
    if not mined:
        return [
            Finding(
                Collector.LOGS,
                "No error lines around onset",
                EvidenceStatus.EMPTY,
                query,
                start,
                end,
            )
        ]
    return [
        Finding(
            Collector.LOGS,
            f"{'NEW ' if t['new'] else ''}log template ×{t['count']}: {t['template'][:300]}",
            query=query,
            window_start=start,
            window_end=end,
            data=t,
        )
        for t in mined[:5]
    ]


def latest_alerts(incident_id: Any) -> QuerySet:
    """The incident's ALERTS_SHOWN latest alerts: the ones the similar-incidents search
    reads, here or nested with the incident (`selectors.own_alert_texts`)."""
    return Alert.objects.filter(incident_id=incident_id).order_by("-last_seen", "-id")[
        :ALERTS_SHOWN
    ]


def collect_similar(scope: Scope, deadline: float) -> list[Finding]:
    own_alerts = scope.own_alerts
    if own_alerts is None:
        own_alerts = latest_alerts(scope.incident_id).values_list("title", "labels")
    alert_text = " ".join(
        f"{title} {' '.join(str(v) for v in (labels or {}).values())}"
        for title, labels in own_alerts
    )
    found = similar.similar_incidents(
        incident_id=scope.incident_id,
        text=scrub_text(f"{scope.title} {scope.service} {scope.description} {alert_text}"),
        title=scope.title,
        service=scope.service,
        limit=3,
    )
    query = f"resolved incidents like: {scope.title[:120]}"
    if not found:
        return [Finding(Collector.SIMILAR, "No similar past incident", EvidenceStatus.EMPTY, query)]
    findings = []
    for item in found:
        outcome = item.get("outcome") or {}
        learned = (
            f"; root cause: {outcome['root_cause'][:160]}" if outcome.get("root_cause") else ""
        )
        findings.append(
            Finding(
                Collector.SIMILAR,
                f"Similar: #{item['id']} {item['title'][:150]} ({item['status']}){learned}",
                query=query,
                data=item,
            )
        )
    return findings


# The order is the order of the evidence keys; remote ones run in threads.
LOCAL = {
    Collector.CHANGES: collect_changes,
    Collector.ALERTS: collect_alerts,
    Collector.SIMILAR: collect_similar,
}
REMOTE = {
    Collector.METRICS: collect_metrics,
    Collector.LOGS: collect_logs,
}
RESOLVED = IncidentStatus.RESOLVED
