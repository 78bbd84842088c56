"""The context stage: collectors in parallel with deadlines, stored rows and snapshot."""

import gc
import json
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from evidence import sources
from evidence.artifacts import snapshot_load
from evidence.models import Evidence, EvidenceSet
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
        self.spans: dict[str, tuple[float, float]] = {}

    def _slow(self, name: str) -> None:
        self.threads.add(threading.current_thread().name)
        began = time.monotonic()
        time.sleep(self.delay)  # a slow upstream, not synchronisation
        self.spans[name] = (began, time.monotonic())

    def metric_range(self, expr, *, start, end, step, deadline):
        self._slow("metrics")
        return self.points

    def log_lines(self, *, start, end, limit, deadline):
        self._slow("logs")
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
    # Both slow collectors ran at the same time, each in a thread of its own.
    wait_until(lambda: len(readers.spans) == 2, timeout=10, what="both readers to finish")
    (start_a, end_a), (start_b, end_b) = readers.spans.values()
    assert max(start_a, start_b) < min(end_a, end_b)


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


def test_firing_alerts_of_a_dependency_are_related_but_not_of_other_services(installed):
    from incidents.tests.factories import AlertFactory

    incident = IncidentFactory(service="checkout")
    AlertFactory(service="payments", title="payments error budget burn")  # a dependency
    AlertFactory(service="kafka", title="kafka disk full")  # unrelated
    installed(FakeReaders(logs=[], points=[]))
    evidence_set = evidence_gather(incident=incident, seconds=2)
    alerts = [e for e in evidence_set.items.all() if e.collector == "alerts"]
    assert [a.data["service"] for a in alerts] == ["payments"]
    [changes] = [e for e in evidence_set.items.all() if e.collector == "changes"]
    assert changes.data["dependencies"] == ["payments"]


def _own_alert_reads(queries, incident_id: int) -> int:
    """Reads of the incident's alerts with their labels (not its onset, nor other incidents')."""
    # A compiled read is logged as written, with its placeholder instead of the id.
    own = [f'"incidents_alert"."incident_id" = {v}' for v in (incident_id, "%s")]
    return sum(
        any(o in q["sql"] for o in own) and '"incidents_alert"."labels"' in q["sql"]
        for q in queries
    )


@pytest.mark.parametrize("given", [False, True])
def test_the_similar_collector_searches_with_the_incidents_alerts(installed, given):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents.tests.factories import AlertFactory

    incident = IncidentFactory(title="Something is odd", service="orders")
    AlertFactory(
        incident=incident,
        service="orders",
        title="consumer falling behind",
        labels={"alertname": "KafkaConsumerLag", "topic": "orders"},
    )
    past = IncidentFactory(
        title="KafkaConsumerLag on topic orders", service="billing", status="resolved"
    )
    installed(FakeReaders(logs=[], points=[]))
    # Read with the incident by the caller (the context stage), or not at all.
    own = (
        [("consumer falling behind", {"alertname": "KafkaConsumerLag", "topic": "orders"})]
        if given
        else None
    )
    with CaptureQueriesContext(connection) as queries:
        evidence_set = evidence_gather(incident=incident, seconds=2, own_alerts=own)
    similar = [e for e in evidence_set.items.all() if e.collector == "similar"]
    # Found by the alert's words only (the title and service share none with it).
    assert [e.data["id"] for e in similar] == [past.pk], connection.vendor
    # The alerts collector reads them; the similar one too unless they were given.
    assert _own_alert_reads(queries.captured_queries, incident.pk) == (1 if given else 2)


def test_the_incidents_alerts_are_read_with_the_incident():
    from django.db.models import OuterRef

    from evidence.selectors import own_alert_texts, own_alerts_of
    from incidents.models import Incident
    from incidents.tests.factories import AlertFactory

    incident = IncidentFactory()
    AlertFactory(incident=incident, title="disk full", labels={"host": "db-1"})
    AlertFactory(title="someone else's", labels={"host": "db-2"})
    row = Incident.objects.annotate(own=own_alert_texts(OuterRef("pk"))).get(pk=incident.pk)
    assert own_alerts_of(row.own) == [("disk full", {"host": "db-1"})]


def test_a_set_and_its_items_are_saved_in_one_statement_on_postgresql(installed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from evidence.models import EvidenceSet

    incident = IncidentFactory(service="checkout")
    installed(FakeReaders(logs=[], points=[]))
    with CaptureQueriesContext(connection) as queries:
        evidence_set = evidence_gather(incident=incident, seconds=2)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "WITH S AS"))
    ]
    assert len(writes) == (1 if connection.vendor == "postgresql" else 2)
    stored = EvidenceSet.objects.get(pk=evidence_set.pk)
    items = list(stored.items.order_by("id"))
    assert [i.key for i in items] == [f"E{n}" for n in range(1, len(items) + 1)]
    assert {i.pk for i in items} == {g.pk for g in evidence_set.items.all()}
    assert all(i.incident_id == incident.pk for i in items)
    assert stored.created_at is not None and stored.artifact_sha256


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_set_is_stored_on_a_thread_of_its_own_while_the_caller_goes_on(installed):
    """Outside a transaction on PostgreSQL, the snapshot and rows are written by a pool
    thread on its own connection; the caller has the planner's items at once."""
    from django.db import connection, transaction

    from evidence import stage

    if connection.vendor != "postgresql":
        pytest.skip("a pool thread's own connection needs PostgreSQL (SQLite: one writer)")
    installed(FakeReaders(logs=[], points=[]))
    incident = IncidentFactory(service="checkout")
    collected = stage.evidence_collect_started(incident=incident, seconds=2).result()
    assert collected.gathered and not EvidenceSet.objects.filter(incident=incident).exists()
    stored_by: list[str] = []
    real_store = stage.evidence_store

    def store(c):
        stored_by.append(threading.current_thread().name)
        return real_store(c)

    stage.evidence_store = store
    try:
        evidence_set = stage.evidence_store_started(collected).result(timeout=30)
        # Inside a transaction a thread could not see the incident: stored here.
        with transaction.atomic():
            inline = stage.evidence_store_started(
                stage.evidence_collect_started(incident=incident).result()
            )
            assert inline.done()
    finally:
        stage.evidence_store = real_store
    assert stored_by[0].startswith("evidence-store") and stored_by[1] == "MainThread"
    assert [e.key for e in evidence_set.items.order_by("id")] == [
        i["key"] for i in collected.gathered
    ]
    assert snapshot_load(
        key=evidence_set.artifact_key, expected_sha256=evidence_set.artifact_sha256
    )
    # Dated when gathered, so it sorts before a runbook planned from it.
    assert (
        EvidenceSet.objects.get(pk=evidence_set.pk).created_at == collected.evidence_set.created_at
    )


def test_store_pool_warm_builds_every_pool_thread_s_storage_client(settings, s3_server):
    """On S3 each thread builds its own client on first use (a boto3 session, tens of ms):
    warming leaves one in every thread of the store pool, before any set is stored."""
    from django.core.files.storage import storages

    from evidence import stage
    from testing.services import s3_create_bucket, s3_storage_settings

    s3_create_bucket(s3_server, "warm-pool")
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": s3_storage_settings(s3_server, "warm-pool"),
    }
    storage = storages["artifacts"]  # a new instance: no thread has a client yet
    workers = stage.STORE_THREADS
    meet = threading.Barrier(workers)

    def has_client() -> bool:
        meet.wait(timeout=10)  # one probe per thread
        return getattr(storage._connections, "connection", None) is not None

    def probe() -> list[bool]:
        return [
            f.result(timeout=30)
            for f in [stage._STORE_POOL.submit(has_client) for _ in range(workers)]
        ]

    assert probe() == [False] * workers
    stage.store_pool_warm()
    assert probe() == [True] * workers


def test_worker_start_warms_every_client_and_survives_one_that_fails(monkeypatch, caplog):
    from evidence import artifacts, stage
    from executor.connectors import http
    from incident_response import celery

    warmed: list[str] = []
    monkeypatch.setattr(http, "shared_client", lambda: warmed.append("http"))
    monkeypatch.setattr(stage, "store_pool_warm", lambda: warmed.append("pool"))

    def broken() -> None:
        raise RuntimeError("no such endpoint")

    broken.__name__ = "storage_warm"
    monkeypatch.setattr(artifacts, "storage_warm", broken)
    gc.unfreeze()
    try:
        celery._warm_clients()
        # What it loaded is frozen: a collection inside an incident does not walk it.
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert warmed == ["http", "pool"]
    assert "warming storage_warm failed" in caplog.text


def test_log_lines_with_a_nul_or_a_lone_surrogate_are_stored_cleaned(installed):
    """PostgreSQL refuses both: one such line must not cost the incident its evidence."""
    incident = IncidentFactory(service="checkout")
    base = incident.detected_at.timestamp()
    logs = [(base + i, f"ERROR pool\x00 exhausted \ud800 n={i}") for i in range(4)]
    installed(FakeReaders(points=[], logs=logs))
    evidence_set = evidence_gather(incident=incident, seconds=5)
    [log] = Evidence.objects.filter(evidence_set=evidence_set, collector="logs")
    stored = json.dumps(log.data) + log.summary + log.query
    assert "\\u0000" not in stored and "\x00" not in stored and "\\ud800" not in stored
    assert "pool exhausted ?" in json.dumps(log.data)
