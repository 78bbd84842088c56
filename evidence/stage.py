"""The context stage: run the collectors in parallel, each with its own deadline, and
store what they found as Evidence rows and one immutable snapshot.

Every collector runs in a thread of its own. Inside a transaction (eager tasks in a
caller's transaction, tests) the database collectors run in the calling thread
instead, on its connection: a thread would open another connection that cannot see
the uncommitted rows. A collector that overruns its deadline is recorded as
`timeout` and the stage goes on without it.
"""

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from incidents.models import Alert, Incident
from incidents.storable import clean_payload, clean_text

from .artifacts import snapshot_store, storage_warm
from .choices import Collector, EvidenceStatus
from .collectors import CHANGES_BEFORE, LOCAL, REMOTE, Finding, Scope, collect_changes
from .deploys import record_deploys
from .models import Evidence, EvidenceSet
from .scrub import scrub_text
from .selectors import evidence_item
from .sources import observability
from .store import evidence_save

logger = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="evidence")


def collector_seconds() -> float:
    return float(getattr(settings, "EVIDENCE_COLLECTOR_SECONDS", 5.0))


_UNREAD = object()


def onset_of(incident: Incident, first_alert_at: Any = _UNREAD) -> "timezone.datetime":
    """When it began: the earliest start among its alerts, else when it was detected.

    `first_alert_at` is that earliest start when the caller read it already (None: no
    alert has one)."""
    first = (
        Alert.objects.filter(incident=incident, starts_at__isnull=False)
        .order_by("starts_at")
        .values_list("starts_at", flat=True)
        .first()
        if first_alert_at is _UNREAD
        else first_alert_at
    )
    return min(first, incident.detected_at) if first else incident.detected_at


def scope_of(
    incident: Incident,
    first_alert_at: Any = _UNREAD,
    own_alerts: list[tuple[str, dict]] | None = None,
) -> Scope:
    source = observability()
    readers = source.for_service(incident.service) if source and incident.service else None
    return Scope(
        incident_id=incident.pk,
        service=incident.service,
        title=incident.title,
        description=incident.description,
        onset=onset_of(incident, first_alert_at),
        now=timezone.now(),
        dependencies=list(readers.dependencies) if readers else [],
        readers=readers,
        own_alerts=own_alerts,
    )


def _timed(name: str, fn, scope: Scope, seconds: float) -> list[Finding]:
    started = time.monotonic()
    try:
        found = fn(scope, started + seconds)
    except Exception as exc:
        logger.warning("collector %s failed: %s", name, exc)
        found = [Finding(name, f"{name} failed: {type(exc).__name__}", EvidenceStatus.ERROR)]
    took = int((time.monotonic() - started) * 1000)
    for f in found:
        f.duration_ms = took
    return found


def _deploys_recorded(future: Future, begun: float, seconds: float) -> list[Finding]:
    """Record the deploys read from where the service runs (in this thread: it writes);
    a finding only when they could not be read."""
    try:
        deploys = future.result(timeout=max(0.0, seconds - (time.monotonic() - begun)) + 0.05)
    except FutureTimeout:
        return [
            Finding(
                Collector.CHANGES,
                f"Deploys of the service's apps: no answer within {seconds:g} s",
                EvidenceStatus.TIMEOUT,
            )
        ]
    except Exception as exc:
        return [
            Finding(
                Collector.CHANGES,
                f"Deploys of the service's apps not read: {scrub_text(str(exc))[:200]}",
                EvidenceStatus.ERROR,
            )
        ]
    if deploys:
        record_deploys(deploys)
    return []


def _timed_on_own_connection(name: str, fn, scope: Scope, seconds: float) -> list[Finding]:
    """A database collector in a pool thread: its connection follows the task rule
    (CONN_MAX_AGE), checked before and after, since no request or task cycle closes it."""
    close_old_connections()
    try:
        return _timed(name, fn, scope, seconds)
    finally:
        close_old_connections()


class Running:
    """Every collector started on a scope, each with its deadline; the caller may do other
    work before `findings()` waits for them."""

    def __init__(self, scope: Scope, seconds: float | None = None) -> None:
        seconds = seconds if seconds is not None else collector_seconds()
        self.scope, self.seconds = scope, seconds
        self.started = time.monotonic()
        # Deploys read from the service's apps become changes before the changes collector reads.
        reader = getattr(scope.readers, "recent_deploys", None)
        self.deploys = (
            _POOL.submit(
                reader,
                since=(scope.onset - CHANGES_BEFORE).timestamp(),
                deadline=self.started + seconds,
            )
            if reader is not None
            else None
        )
        self.futures = {
            name: _POOL.submit(_timed, name, fn, scope, seconds) for name, fn in REMOTE.items()
        }
        self.local = {
            n: fn
            for n, fn in LOCAL.items()
            if not (n == Collector.CHANGES and self.deploys is not None)
        }
        # Inside a transaction the database collectors wait for findings(), in this thread.
        self.inline = connection.in_atomic_block
        if not self.inline:
            self.futures.update(
                {
                    name: _POOL.submit(_timed_on_own_connection, name, fn, scope, seconds)
                    for name, fn in self.local.items()
                }
            )

    def findings(self) -> list[Finding]:
        """Every collector's findings, in collector order; never raises, never waits past
        the longest deadline."""
        scope, seconds, started = self.scope, self.seconds, self.started
        results: dict[str, list[Finding]] = {}
        if self.inline:
            results.update(
                {name: _timed(name, fn, scope, seconds) for name, fn in self.local.items()}
            )
        if self.deploys is not None:
            noted = _deploys_recorded(self.deploys, started, seconds)
            results[Collector.CHANGES] = _timed(Collector.CHANGES, collect_changes, scope, seconds)
            results[Collector.CHANGES] += noted
        for name, future in self.futures.items():
            # The collectors started together: each gets what is left of its own deadline.
            left = max(0.0, seconds - (time.monotonic() - started)) + 0.05
            try:
                results[name] = future.result(timeout=left)
            except FutureTimeout:
                results[name] = [
                    Finding(name, f"{name}: no answer within {seconds:g} s", EvidenceStatus.TIMEOUT)
                ]
        order = [*LOCAL, *REMOTE]
        return [f for name in order for f in results.get(name, [])]


def _snapshot(incident: Incident, scope: Scope, items: list[Evidence]) -> dict:
    return {
        "incident": incident.pk,
        "service": scope.service,
        "onset": scope.onset.isoformat(),
        "items": [
            {
                "key": e.key,
                "collector": e.collector,
                "status": e.status,
                "summary": e.summary,
                "query": e.query,
                "window": [
                    e.window_start.isoformat() if e.window_start else None,
                    e.window_end.isoformat() if e.window_end else None,
                ],
                "data": e.data,
            }
            for e in items
        ],
    }


@dataclass
class Collected:
    """What the collectors found, not stored yet: the rows to write, the snapshot's
    body, and the items as planners read them (`gathered`)."""

    evidence_set: EvidenceSet
    items: list[Evidence]
    snapshot: dict
    gathered: list[dict]


class Collecting:
    """An incident's collectors at work (`evidence_collect_started`); `result()` waits
    for them and returns what they found, not stored yet."""

    def __init__(self, incident: Incident, scope: Scope, running: Running, started: float) -> None:
        self.incident, self.scope, self.running, self.started = incident, scope, running, started

    def result(self) -> Collected:
        incident, scope = self.incident, self.scope
        findings = self.running.findings()
        evidence_set = EvidenceSet(incident=incident, onset=scope.onset)
        items = [
            Evidence(
                evidence_set=evidence_set,
                incident=incident,
                key=f"E{i}",
                collector=f.collector,
                # Log lines and label values as the sources gave them: cleaned of what
                # PostgreSQL will not store, or the whole set would be refused.
                query=clean_text(f.query)[:4000],
                window_start=f.window_start,
                window_end=f.window_end,
                summary=clean_text(f.summary)[:500],
                data=clean_payload(f.data),
                status=f.status,
                duration_ms=f.duration_ms,
            )
            for i, f in enumerate(findings, start=1)
        ]
        evidence_set.duration_ms = int((time.monotonic() - self.started) * 1000)
        # When it was gathered, not when its row went in (perhaps after the runbook's).
        evidence_set.created_at = timezone.now()
        return Collected(
            evidence_set,
            items,
            _snapshot(incident, scope, items),
            [evidence_item(e) for e in items],
        )


def evidence_collect_started(
    *,
    incident: Incident,
    seconds: float | None = None,
    first_alert_at: Any = _UNREAD,
    own_alerts: list[tuple[str, dict]] | None = None,
) -> Collecting:
    """Start the collectors on the incident and return at once: the caller's own work
    (a claim, a read) overlaps theirs; `result()` waits for what they found, and stores
    nothing (see `evidence_store`).

    `first_alert_at`: the earliest start among the incident's alerts, and `own_alerts`
    its latest alerts' (title, labels), when the caller read them with the incident
    (see `onset_of`, `selectors.own_alert_texts`)."""
    started = time.monotonic()
    scope = scope_of(incident, first_alert_at, own_alerts)
    return Collecting(incident, scope, Running(scope, seconds), started)


def evidence_store(collected: Collected) -> EvidenceSet:
    """Store the snapshot, then the set and its items; returns the set (its items as
    planners read them in `gathered`)."""
    evidence_set = collected.evidence_set
    # The snapshot names no row id: store it first, then the set and its items in one go.
    key, digest = snapshot_store(
        prefix=f"evidence/{evidence_set.incident_id}", data=collected.snapshot
    )
    evidence_set.artifact_key, evidence_set.artifact_sha256 = key, digest
    evidence_save(evidence_set, collected.items)
    evidence_set.gathered = collected.gathered
    return evidence_set


def evidence_gather(
    *,
    incident: Incident,
    seconds: float | None = None,
    first_alert_at: Any = _UNREAD,
    own_alerts: list[tuple[str, dict]] | None = None,
) -> EvidenceSet:
    """Gather, store and snapshot the incident's evidence; returns the new set, with the
    items as planners read them (`evidence.selectors.evidence_items`) in `gathered`."""
    return evidence_store(
        evidence_collect_started(
            incident=incident,
            seconds=seconds,
            first_alert_at=first_alert_at,
            own_alerts=own_alerts,
        ).result()
    )


# Storing a set (a PUT to the object store, then one INSERT) while the runbook is
# planned: a pool of its own, so collectors stuck past their deadline never hold it up.
STORE_THREADS = 2
_STORE_POOL = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="evidence-store")


def _store_on_own_connection(collected: Collected) -> EvidenceSet:
    close_old_connections()
    try:
        return evidence_store(collected)
    finally:
        close_old_connections()


def store_pool_warm() -> None:
    """Start the store pool's threads and build each one's artifact-storage client (see
    `storage_warm`), so that the first sets stored pay neither."""
    # Each task waits for the others: one thread cannot take two, so all of them start.
    meet = threading.Barrier(STORE_THREADS)

    def warm() -> None:
        meet.wait(timeout=30)
        storage_warm()

    for started in [_STORE_POOL.submit(warm) for _ in range(STORE_THREADS)]:
        started.result(timeout=60)


def evidence_store_started(collected: Collected) -> "Future[EvidenceSet]":
    """`evidence_store` on a pool thread, when its own connection can see the incident
    (PostgreSQL, outside a transaction); else done here, before this returns. The
    caller waits for the result before it is done with the incident."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        done: Future[EvidenceSet] = Future()
        try:
            done.set_result(evidence_store(collected))
        except Exception as exc:
            done.set_exception(exc)
        return done
    return _STORE_POOL.submit(_store_on_own_connection, collected)


def finding_dict(f: Finding) -> dict:
    return asdict(f)
