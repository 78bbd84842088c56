"""The context stage: collectors in parallel with deadlines, stored rows and snapshot."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from evidence import sources
from evidence.artifacts import snapshot_load
from evidence.models import Evidence
from evidence.stage import evidence_gather
from incidents.choices import ChangeKind, IncidentStatus
from incidents.models import ChangeEvent
from incidents.tests.factories import IncidentFactory
from testing.waiting import wait_until

pytestmark = pytest.mark.django_db


class FakeReaders:
    def __init__(self, *, delay: float = 0.0, logs=None, signals=None, points=None):
        self.service = "checkout"
        self.signals = signals or {"errors": 'rate(errors{service="checkout"}[1m])'}
        self.dependencies = ["payments"]
        self.delay = delay
        self.logs = logs
        self.points = points
        self.threads: set[str] = set()
        self.spans: list[tuple[float, float]] = []  # (began, ended) of each slow read

    def _slow(self) -> None:
        began = time.monotonic()
        time.sleep(self.delay)  # a slow upstream, not synchronisation
        self.spans.append((began, time.monotonic()))

    def metric_range(self, expr, *, start, end, step, deadline):
        self.threads.add(threading.current_thread().name)
        self._slow()
        return self.points

    def log_lines(self, *, start, end, limit, deadline):
        self.threads.add(threading.current_thread().name)
        self._slow()
        return self.logs

    def scrub(self, text):
        return text.replace("target-secret-value", "***")


class FakeSource:
    def __init__(self, readers):
        self.readers = readers

    def for_service(self, service):
        return self.readers


@pytest.fixture
def installed():
    saved = sources.observability()
    yield lambda readers: sources.install(FakeSource(readers))
    sources.install(saved)


def test_evidence_from_every_collector_is_stored_and_snapshotted(installed):
    incident = IncidentFactory(service="checkout", title="Checkout p99 latency above 3s")
    onset = incident.detected_at
    ChangeEvent.objects.create(
        service="checkout",
        kind=ChangeKind.DEPLOY,
        version="v2.14",
        previous_version="v2.13",
        started_at=onset - timedelta(minutes=4),
        origin="test",
        external_id="d1",
    )
    ChangeEvent.objects.create(  # too old to matter
        service="checkout",
        kind=ChangeKind.DEPLOY,
        version="v2.10",
        started_at=onset - timedelta(days=2),
        origin="test",
        external_id="d0",
    )
    past = IncidentFactory(
        service="checkout", title="Checkout latency above SLO", status=IncidentStatus.RESOLVED
    )
    base = onset.timestamp()
    points = [(base - 3600 + 60 * i, 0.1 if i < 55 else 5.0) for i in range(70)]
    logs = [(base - 1800, "GET /health ok")] + [
        (base + i, f"ERROR db pool exhausted token=target-secret-value n={i}") for i in range(4)
    ]
    readers = FakeReaders(points=points, logs=logs)
    installed(readers)

    evidence_set = evidence_gather(incident=incident, seconds=5)

    items = {e.key: e for e in Evidence.objects.filter(evidence_set=evidence_set)}
    by = {}
    for e in items.values():
        by.setdefault(e.collector, []).append(e)
    [deploy] = by["changes"]
    assert deploy.data["version"] == "v2.14" and deploy.data["minutes_before_onset"] == 4.0
    assert "from v2.13" in deploy.summary
    [metric] = by["metrics"]
    assert metric.data["change"]["direction"] == "up"
    assert metric.data["onset_minutes_before_incident"] == pytest.approx(5.0)
    [log] = by["logs"]
    assert log.data["new"] is True and log.data["count"] == 4
    assert "target-secret-value" not in log.summary + str(log.data)
    [similar] = by["similar"]
    assert similar.data["id"] == past.pk
    assert by["alerts"][0].status == "empty"
    # The collectors' threads never ran in the calling thread.
    assert threading.current_thread().name not in readers.threads
    snapshot = snapshot_load(
        key=evidence_set.artifact_key, expected_sha256=evidence_set.artifact_sha256
    )
    assert [i["key"] for i in snapshot["items"]] == sorted(items, key=lambda k: int(k[1:]))


def test_collectors_run_in_parallel_and_a_slow_one_times_out(installed):
    incident = IncidentFactory(service="checkout")
    readers = FakeReaders(delay=0.6, logs=[], points=[])
    installed(readers)
    evidence_set = evidence_gather(incident=incident, seconds=0.3)
    statuses = {e.collector: e.status for e in evidence_set.items.all()}
    assert statuses["metrics"] == "timeout" and statuses["logs"] == "timeout"
    # Both slow collectors ran at the same time, not one after the other: the second
    # began before the first had ended (the stage did not wait for them to end).
    wait_until(lambda: len(readers.spans) == 2, timeout=10, what="the abandoned reads to end")
    (began_a, ended_a), (began_b, ended_b) = readers.spans
    assert max(began_a, began_b) < min(ended_a, ended_b)


def test_without_observability_the_remote_collectors_say_so(installed):
    sources.install(None)
    incident = IncidentFactory(service="checkout", detected_at=timezone.now())
    statuses = {e.collector: e.status for e in evidence_gather(incident=incident).items.all()}
    assert statuses == {
        "changes": "empty",
        "alerts": "empty",
        "similar": "empty",
        "metrics": "empty",
        "logs": "empty",
    }
