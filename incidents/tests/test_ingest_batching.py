"""Ingest in bulk: new alerts and their outbox row in one statement (PostgreSQL, with a
worker), batch claims that drain the outbox, processing whose query count does not grow
with the batch, and the sweeper pruning processed outbox rows.

The request-path tests run with the Celery app made non-eager and pointed at a closed
port (`broker`), as a web process whose broker is down: nothing is processed until the
test calls the worker's code itself.
"""

import copy
import threading
import time
from datetime import timedelta
from itertools import chain

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.choices import TimelineKind
from incidents.ingest import outbox, store
from incidents.ingest.grouping import alerts_process
from incidents.ingest.outbox import outbox_process
from incidents.ingest.store import alert_ingest
from incidents.ingest.sweep import ingest_sweep
from incidents.models import Alert, Incident, IngestOutbox, TimelineEvent
from testing.broker import broker_down

from .ingest_helpers import eager, make_source, payload, post, secrets  # noqa: F401

pytestmark = pytest.mark.usefixtures("secrets")

ALERT_TABLE = '"incidents_alert"'  # quoted: not incidents_alertsource / incidents_alertgroup
OUTBOX_TABLE = '"incidents_ingestoutbox"'


def needs_postgresql(why: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip(f"PostgreSQL only: {why}")


def alert_sql(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if ALERT_TABLE in q["sql"]]


def pending_ids() -> list[int]:
    return list(
        IngestOutbox.objects.filter(processed_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


# --- the request: one statement for new alerts --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_new_alerts_and_their_outbox_row_are_one_statement(client):
    needs_postgresql("the one-statement insert is a data-modifying CTE")
    source = make_source("alertmanager")
    body = payload("alertmanager/valid_group_firing.json")
    with broker_down(), CaptureQueriesContext(connection) as queries:
        response = post(client, "alertmanager", body)
    assert response.status_code == 202, response.content
    answer = response.json()
    assert (answer["created"], answer["updated"], answer["unchanged"]) == (2, 0, 0)

    touching = alert_sql(queries)
    assert len(touching) == 1, touching
    # The outbox row is written by that same statement, and by no other.
    assert OUTBOX_TABLE in touching[0] and "ON CONFLICT" in touching[0]
    outbox_inserts = [
        q["sql"]
        for q in queries.captured_queries
        if OUTBOX_TABLE in q["sql"] and "INSERT" in q["sql"].upper()
    ]
    assert outbox_inserts == touching

    alerts = list(Alert.objects.filter(source=source).order_by("pk"))
    assert len(alerts) == 2
    assert all(a.count == 1 and a.incident_id is None for a in alerts)
    outbox = IngestOutbox.objects.get()
    assert outbox.source_id == source.pk
    assert outbox.alert_ids == [a.pk for a in alerts]
    assert outbox.processed_at is None and outbox.attempts == 0
    # Dispatched after the (autocommitted) statement: the down broker is on record.
    assert outbox.last_error.startswith("dispatch failed"), outbox.last_error
    assert Incident.objects.count() == 0


CASES = [
    ("alertmanager", "alertmanager/valid_group_firing.json"),
    ("alertmanager", "alertmanager/valid_group_resolved.json"),
    ("generic", "generic/valid_resolved.json"),
    ("pagerduty", "pagerduty/valid_trigger.json"),
    ("datadog", "datadog/valid_triggered.json"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "name"), CASES, ids=[n for _, n in CASES])
def test_the_one_statement_stores_what_the_general_path_stores(monkeypatch, kind, name):
    """Same payload, same clock: the direct insert and _store write identical rows."""
    needs_postgresql("the one-statement insert is a data-modifying CTE")
    mapping = {"critical": "SEV2", "error": "SEV1", "high": "SEV4"}
    direct = make_source(kind, slug=f"{kind}-direct", severity_mapping=mapping)
    general = make_source(kind, slug=f"{kind}-general", severity_mapping=mapping)
    body = payload(name)
    now = timezone.now() - timedelta(minutes=3)
    with broker_down():
        with CaptureQueriesContext(connection) as queries:
            one = alert_ingest(source=direct, payload=copy.deepcopy(body), now=now)
        assert len(alert_sql(queries)) == 1 and "ON CONFLICT" in alert_sql(queries)[0]
        with monkeypatch.context() as m:
            m.setattr(store, "insert_directly", lambda parsed: False)
            with CaptureQueriesContext(connection) as queries:
                two = alert_ingest(source=general, payload=copy.deepcopy(body), now=now)
        assert not any("ON CONFLICT" in sql for sql in alert_sql(queries))
    assert one.created == two.created == len(body.get("alerts", [body]))
    assert (one.updated, one.unchanged, one.ignored) == (0, 0, 0)

    def rows(source) -> dict[str, dict]:
        skip = {"id", "source_id"}
        return {
            a.dedup_key: {
                f.attname: getattr(a, f.attname)
                for f in Alert._meta.concrete_fields
                if f.attname not in skip
            }
            for a in Alert.objects.filter(source=source)
        }

    assert rows(direct) == rows(general)
    for source, result in ((direct, one), (general, two)):
        outbox = IngestOutbox.objects.get(source=source)
        assert outbox.pk == result.outbox_id
        assert sorted(outbox.alert_ids) == sorted(
            Alert.objects.filter(source=source).values_list("pk", flat=True)
        )
        assert outbox.processed_at is None


@pytest.mark.django_db(transaction=True)
def test_known_alerts_take_the_general_path(client):
    needs_postgresql("the one-statement insert is a data-modifying CTE")
    source = make_source("alertmanager")
    body = payload("alertmanager/valid_group_firing.json")
    with broker_down():
        assert post(client, "alertmanager", body).json()["created"] == 2
        first_box = IngestOutbox.objects.get()
        known = {a.dedup_key: a for a in Alert.objects.filter(source=source)}

        # A re-delivery: nothing changes, nothing is queued.
        again = post(client, "alertmanager", body)
        assert again.status_code == 202, again.content
        answer = again.json()
        assert (answer["created"], answer["updated"], answer["unchanged"]) == (0, 0, 2)
        assert IngestOutbox.objects.count() == 1
        assert set(Alert.objects.values_list("count", flat=True)) == {1}

        # One known alert that changed, one new alert.
        mixed = copy.deepcopy(body)
        mixed["alerts"][0]["annotations"]["description"] = "5xx ratio is 9.9% on checkout-1"
        mixed["alerts"][1]["labels"]["instance"] = "checkout-3:8080"  # no fingerprint: new
        response = post(client, "alertmanager", mixed)
    assert response.status_code == 202, response.content
    answer = response.json()
    assert (answer["created"], answer["updated"], answer["unchanged"]) == (1, 1, 0)

    assert Alert.objects.count() == 3
    changed = Alert.objects.get(pk=known["a1b2c3d4e5f60718"].pk)
    assert changed.description == "5xx ratio is 9.9% on checkout-1"
    assert changed.count == 2  # a firing repeat counts one more occurrence (_apply)
    untouched = Alert.objects.get(pk=next(a.pk for k, a in known.items() if k != changed.dedup_key))
    assert untouched.count == 1
    new = Alert.objects.exclude(pk__in=[a.pk for a in known.values()]).get()
    assert new.count == 1 and new.labels["instance"] == "checkout-3:8080"

    boxes = IngestOutbox.objects.exclude(pk=first_box.pk)
    assert boxes.exists() and all(b.processed_at is None for b in boxes)
    assert set(chain.from_iterable(b.alert_ids for b in boxes)) == {changed.pk, new.pk}
    first_box.refresh_from_db()
    assert sorted(first_box.alert_ids) == sorted(a.pk for a in known.values())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        # The same key twice in one delivery: the general path merges them.
        ("generic", payload("generic/valid_batch.json"), {"created": 2, "alerts": 2}),
        # An acknowledge for a key never seen: dropped, as PagerDuty does.
        ("pagerduty", payload("pagerduty/valid_acknowledge.json"), {"ignored": 1, "alerts": 0}),
    ],
    ids=["repeated-key", "update-only"],
)
def test_what_the_one_statement_cannot_take_goes_the_general_path(kind, body, expected):
    needs_postgresql("the one-statement insert is a data-modifying CTE")
    source = make_source(kind)
    with broker_down(), CaptureQueriesContext(connection) as queries:
        result = alert_ingest(source=source, payload=body)
    assert not any("ON CONFLICT" in sql for sql in alert_sql(queries))
    assert result.created == expected.get("created", 0)
    assert result.ignored == expected.get("ignored", 0)
    assert Alert.objects.filter(source=source).count() == expected["alerts"]
    assert IngestOutbox.objects.count() == (1 if expected["alerts"] else 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager")
def test_eager_ingest_on_postgresql_does_not_use_the_one_statement(client):
    """Eager (no worker): the general path processes inline in the same transaction."""
    needs_postgresql("the one-statement insert is a data-modifying CTE")
    make_source("alertmanager")
    with CaptureQueriesContext(connection) as queries:
        response = post(client, "alertmanager", payload("alertmanager/valid_group_firing.json"))
    assert response.json()["created"] == 2
    assert not any("ON CONFLICT" in sql for sql in alert_sql(queries))
    assert Incident.objects.get().alerts.count() == 2  # processed inline
    assert IngestOutbox.objects.get().processed_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_new_alert_create_it_once():
    needs_postgresql("the race is between concurrent PostgreSQL connections")
    make_source("generic")
    body = {"title": "Disk full on db-1", "service": "db", "dedup_key": "disk-full-db-1"}
    n = 8
    start = threading.Barrier(n)
    answers: list[tuple[int, dict] | None] = [None] * n
    errors: list[BaseException] = []

    def deliver(i: int) -> None:
        try:
            client = Client()
            start.wait(10)
            response = post(client, "generic", body)
            answers[i] = (response.status_code, response.json())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with broker_down():
        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert [a[0] for a in answers] == [202] * n, answers
    assert sum(a[1]["created"] for a in answers) == 1
    assert sum(a[1]["unchanged"] for a in answers) == n - 1
    alert = Alert.objects.get()
    assert alert.dedup_key == "disk-full-db-1" and alert.count == 1
    assert IngestOutbox.objects.get().alert_ids == [alert.pk]


# --- the worker: claims, drains, constant work per batch ------------------------------


@pytest.mark.django_db
def test_one_message_drains_every_pending_row_on_postgresql(client, monkeypatch):
    """25 deliveries for 5 services. On PostgreSQL one message claims batches of 10 in
    created_at order until none is left; SQLite (no SKIP LOCKED) does its own row only."""
    make_source("generic")
    with broker_down():
        for i in range(25):
            response = post(client, "generic", {"title": f"Alert {i}", "service": f"svc-{i % 5}"})
            assert response.status_code == 202, response.content
    rows = list(IngestOutbox.objects.order_by("pk").values_list("pk", flat=True))
    assert len(rows) == 25 and pending_ids() != [] and Incident.objects.count() == 0
    alert_of = dict(IngestOutbox.objects.values_list("pk", "alert_ids"))
    assert all(len(ids) == 1 for ids in alert_of.values())
    # Newest row first in created_at order: the claims must follow created_at, not pk.
    base = timezone.now() - timedelta(hours=1)
    for i, pk in enumerate(rows):
        IngestOutbox.objects.filter(pk=pk).update(created_at=base - timedelta(seconds=i))

    passes: list[list[int]] = []
    real_process = outbox.group_alerts

    def spy(alert_ids, now):
        passes.append(sorted(alert_ids))
        return real_process(alert_ids, now)

    monkeypatch.setattr(outbox, "group_alerts", spy)
    assert outbox_process(outbox_id=rows[0], batch=10) is True

    def alerts(pks) -> list[int]:
        return sorted(alert_of[pk][0] for pk in pks)

    if connection.vendor == "postgresql":
        assert pending_ids() == []
        assert (
            passes
            == [
                alerts([rows[0], *rows[16:25]]),  # its own row, then the 9 oldest
                alerts(rows[6:16]),
                alerts(rows[1:6]),
            ]
        )
        assert Incident.objects.count() == 5
    else:
        assert IngestOutbox.objects.filter(processed_at__isnull=False).count() == 1
        assert IngestOutbox.objects.get(pk=rows[0]).processed_at is not None
        assert passes == [alerts([rows[0]])]
        assert Incident.objects.count() == 1
        assert [outbox_process(outbox_id=pk, batch=10) for pk in rows[1:]] == [True] * 24
    assert outbox_process(outbox_id=rows[0], batch=10) is False  # a re-delivered message
    assert Alert.objects.filter(incident__isnull=True).count() == 0
    for i in range(5):
        incident = Incident.objects.get(service=f"svc-{i}")
        assert incident.alerts.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_batch_skips_the_rows_another_worker_holds(client):
    needs_postgresql("SKIP LOCKED")
    make_source("generic")
    with broker_down():
        for i in range(6):
            assert post(client, "generic", {"title": f"A{i}", "service": "svc"}).status_code == 202
    rows = pending_ids()
    held = rows[3]
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                IngestOutbox.objects.select_for_update().get(pk=held)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(10), "the other worker never took its lock"
        with connection.cursor() as cur:
            # Waiting for the lock would fail the batch (and be retried alone) rather than hang.
            cur.execute("SET lock_timeout = '5s'")
        started = time.monotonic()
        assert outbox_process(outbox_id=rows[0], batch=10) is True
        elapsed = time.monotonic() - started
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET lock_timeout")
        release.set()
        thread.join(10)
    assert pending_ids() == [held]
    assert elapsed < 4, "the claim waited for the held row"
    assert outbox_process(outbox_id=held, batch=10) is True
    assert pending_ids() == []
    assert Incident.objects.get().alerts.count() == 6


@pytest.mark.django_db
def test_processing_queries_do_not_grow_with_the_incidents_in_a_batch(client):
    """New alerts for N services that each have an open incident: the same number of
    queries for 5 services as for 15 (PostgreSQL: one outbox_process batch; SQLite,
    without batch claims: alerts_process, the same grouping pass)."""
    make_source("generic")

    def process_pending() -> int:
        pending = pending_ids()
        boxes = IngestOutbox.objects.filter(pk__in=pending)
        ids = list(chain.from_iterable(boxes.values_list("alert_ids", flat=True)))
        with CaptureQueriesContext(connection) as queries:
            if connection.vendor == "postgresql":
                assert outbox_process(outbox_id=pending[0], batch=100) is True
            else:
                alerts_process(alert_ids=ids)
        if connection.vendor != "postgresql":
            boxes.update(processed_at=timezone.now())
        assert pending_ids() == []
        return len(queries.captured_queries)

    def deliver(titles: list[str], names: list[str]) -> None:
        with broker_down():
            for title, name in zip(titles, names, strict=True):
                response = post(client, "generic", {"title": title, "service": name})
                assert response.status_code == 202, response.content

    def queries_for(prefix: str, n: int) -> int:
        names = [f"{prefix}-{i}" for i in range(n)]
        deliver([f"{name} down" for name in names], names)
        process_pending()  # opens one incident per service
        incidents = dict(Incident.objects.filter(service__in=names).values_list("service", "pk"))
        assert len(incidents) == n
        deliver([f"{name} slow" for name in names], names)
        count = process_pending()
        # Each new alert joined its service's open incident; nothing new was opened.
        assert Incident.objects.filter(service__in=names).count() == n
        for name, pk in incidents.items():
            assert set(
                Alert.objects.filter(service=name).values_list("incident_id", flat=True)
            ) == {pk}
            assert (
                TimelineEvent.objects.filter(
                    incident_id=pk, kind=TimelineKind.ALERT_RECEIVED
                ).count()
                == 2
            )
        return count

    small = queries_for("five", 5)
    large = queries_for("fifteen", 15)
    assert small == large, f"{small} queries for 5 services, {large} for 15"


# --- the sweeper: pruning processed rows -------------------------------------------------


@pytest.mark.django_db
def test_the_sweeper_prunes_processed_rows_past_the_keep_window(settings):
    settings.INGEST_OUTBOX_KEEP_HOURS = 2
    settings.INGEST_OUTBOX_GRACE_SECONDS = 30
    settings.INGEST_OUTBOX_MAX_ATTEMPTS = 20
    source = make_source("generic")
    now = timezone.now()

    def row(**fields) -> int:
        pk = IngestOutbox.objects.create(source=source, alert_ids=[]).pk
        if fields:
            IngestOutbox.objects.filter(pk=pk).update(**fields)
        return pk

    made = now - timedelta(hours=6)
    old = [
        row(created_at=made, processed_at=now - timedelta(hours=2, minutes=1 + i)) for i in range(3)
    ]
    edge = row(created_at=made, processed_at=now - timedelta(hours=2))  # not older: kept
    recent = [row(created_at=made, processed_at=now - timedelta(minutes=m)) for m in (1, 90)]
    stuck = row(created_at=now - timedelta(days=3), attempts=20)  # pending, out of retries
    fresh = row(created_at=now)  # pending, within the grace period
    due = row(created_at=now - timedelta(days=3))  # pending: the sweep processes it now

    report = ingest_sweep(now=now)
    assert report.outbox_pruned == 3
    assert report.outbox_processed == 1
    assert set(IngestOutbox.objects.values_list("pk", flat=True)) == {
        edge,
        *recent,
        stuck,
        fresh,
        due,
    }
    assert not IngestOutbox.objects.filter(pk__in=old).exists()
    assert IngestOutbox.objects.get(pk=stuck).processed_at is None
    assert IngestOutbox.objects.get(pk=fresh).processed_at is None
    assert IngestOutbox.objects.get(pk=due).processed_at >= now  # just processed: kept

    # Nothing left to prune: a second sweep deletes nothing.
    assert ingest_sweep(now=now).outbox_pruned == 0
    # Once the window has passed for the rest, they go too, except the pending ones
    # (a long grace: the sweep leaves `fresh` pending this time).
    settings.INGEST_OUTBOX_GRACE_SECONDS = 10 * 24 * 3600
    later = ingest_sweep(now=now + timedelta(hours=3))
    assert later.outbox_pruned == 4
    assert set(IngestOutbox.objects.values_list("pk", flat=True)) == {stuck, fresh}
