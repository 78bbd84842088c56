"""Nothing accepted is lost: with the broker unreachable, alerts are accepted and stored
with their outbox rows; the sweeper processes every one of them when the broker is back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Alert, Incident, IngestOutbox
from testing.broker import broker, broker_down
from testing.waiting import wait_until

from .ingest_helpers import eager, make_source, post, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets")]


def post_while_broker_down(client, settings, n: int) -> None:
    settings.INGEST_OUTBOX_GRACE_SECONDS = 0
    make_source("generic")
    with broker_down():
        for i in range(n):
            response = post(client, "generic", {"title": f"Alert {i}", "service": f"svc-{i % 3}"})
            assert response.status_code == 202, response.content  # accepted all the same
    assert Alert.objects.count() == n
    assert IngestOutbox.objects.count() == n
    pending = IngestOutbox.objects.filter(processed_at__isnull=True, dispatched_at__isnull=True)
    assert pending.count() == n
    errors = list(pending.order_by("pk").values_list("last_error", flat=True))
    # The first failure pauses dispatching, so the webhook stays fast while Redis is down.
    assert "dispatch failed" in errors[0] and "OperationalError" in errors[0]
    assert all("dispatch skipped" in e for e in errors[1:])
    assert Incident.objects.count() == 0  # nothing processed yet


@pytest.mark.usefixtures("eager")
def test_broker_down_then_back_embedded(client, settings):
    """Back on the embedded default (eager): the sweeper task processes every row."""
    from incidents.tasks import sweep_outbox

    n = 12
    post_while_broker_down(client, settings, n)
    result = sweep_outbox.delay()  # eager: runs here
    assert result.get()["outbox_processed"] == n
    assert IngestOutbox.objects.filter(processed_at__isnull=False).count() == n  # in = processed
    assert IngestOutbox.objects.filter(dispatched_at__isnull=False).count() == n
    assert Alert.objects.filter(incident__isnull=True).count() == 0
    assert Incident.objects.count() == 3  # three services, grouped
    assert sweep_outbox.delay().get()["outbox_processed"] == 0  # nothing twice


def test_broker_down_then_back_on_real_redis(client, settings, redis_url, pipeline):
    """Back on the real broker: beat's sweep message reaches the worker, which processes all."""
    if pipeline is None:
        pytest.skip("the session runs Celery eagerly (no REDIS_URL/CELERY_BROKER_URL): no worker")
    from incidents.tasks import sweep_outbox

    n = 12
    post_while_broker_down(client, settings, n)
    # The worker has its own settings (a 30 s grace before it touches a row, so it never
    # races a dispatch in flight): let the outage have lasted that long, as a real one would.
    IngestOutbox.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    with broker(redis_url, run_eager=False):
        sweep_outbox.apply_async()
        wait_until(
            lambda: IngestOutbox.objects.filter(processed_at__isnull=False).count() == n,
            timeout=90,
            what="the worker's sweep to process every accepted alert",
        )
    assert Alert.objects.filter(incident__isnull=True).count() == 0
    assert Incident.objects.count() == 3


def test_with_a_broker_the_request_only_stores_and_the_worker_opens_one_incident(client, settings):
    """Not eager: the request stores the alerts and one outbox row, and does no incident
    work; processing the row later opens exactly one incident, once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents.ingest.outbox import outbox_process
    from incidents.models import AlertGroup, TimelineEvent

    from .ingest_helpers import payload

    make_source("alertmanager")
    body = payload("alertmanager/valid_group_firing.json")
    with broker_down(), CaptureQueriesContext(connection) as queries:
        response = post(client, "alertmanager", body)
    assert response.status_code == 202, response.content
    assert response.json()["created"] == 2
    touched = " ".join(q["sql"] for q in queries.captured_queries)
    assert "incidents_incident" not in touched and "incidents_alertgroup" not in touched
    assert Incident.objects.count() == 0 and AlertGroup.objects.count() == 0
    assert Alert.objects.filter(incident__isnull=True).count() == 2
    outbox = IngestOutbox.objects.get()
    assert outbox.processed_at is None

    assert outbox_process(outbox_id=outbox.pk, batch=50) is True
    incident = Incident.objects.get()
    assert incident.alerts.count() == 2
    outbox.refresh_from_db()
    assert outbox.processed_at is not None and outbox.dispatched_at is not None
    assert outbox_process(outbox_id=outbox.pk, batch=50) is False  # a re-delivered message
    assert Incident.objects.count() == 1
    assert TimelineEvent.objects.filter(incident=incident, kind="alert_received").count() == 1


def _five_pending_rows(client) -> list[int]:
    make_source("generic")
    with broker_down():
        for i in range(5):
            assert post(client, "generic", {"title": f"A{i}", "service": "svc"}).status_code == 202
    rows = list(IngestOutbox.objects.order_by("pk").values_list("pk", flat=True))
    assert len(rows) == 5 and Incident.objects.count() == 0
    return rows


def test_the_worker_processes_pending_rows_in_a_batch_on_postgresql(client):
    """One message takes the other pending rows along (SKIP LOCKED); their own messages
    then find nothing to do."""
    from django.db import connection

    from incidents.ingest.outbox import outbox_process

    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("batch claims need SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL)")
    rows = _five_pending_rows(client)
    assert outbox_process(outbox_id=rows[2], batch=100) is True
    assert IngestOutbox.objects.filter(processed_at__isnull=False).count() == 5
    assert [outbox_process(outbox_id=pk, batch=100) for pk in rows] == [False] * 5
    assert Alert.objects.filter(incident__isnull=True).count() == 0
    assert Incident.objects.count() == 1  # one service, grouped


def test_without_skip_locked_the_worker_processes_its_own_row_only(client):
    """SQLite has no SKIP LOCKED: a message processes its own row; each other row waits
    for its own message."""
    from django.db import connection

    from incidents.ingest.outbox import outbox_process

    if connection.features.has_select_for_update_skip_locked:
        pytest.skip("this database claims batches (SKIP LOCKED)")
    rows = _five_pending_rows(client)
    assert outbox_process(outbox_id=rows[2], batch=100) is True
    assert list(
        IngestOutbox.objects.filter(processed_at__isnull=False).values_list("pk", flat=True)
    ) == [rows[2]]
    assert [outbox_process(outbox_id=pk, batch=100) for pk in rows] == [
        True,
        True,
        False,
        True,
        True,
    ]
    assert Alert.objects.filter(incident__isnull=True).count() == 0
    assert Incident.objects.count() == 1  # one service, grouped


def test_a_source_disabled_after_it_was_cached_is_refused_at_once(client, settings):
    settings.INGEST_SOURCE_CACHE_SECONDS = 3600
    source = make_source("generic")
    with broker_down():
        assert post(client, "generic", {"title": "A"}).status_code == 202  # now cached
        source.enabled = False
        source.save()
        response = post(client, "generic", {"title": "B"})
    assert response.status_code == 404, response.content
