"""The pipeline after the webhook: dedup, grouping, resolution, suspend, storms, runbooks.

These go through on_commit (eager Celery runs the outbox inline), so they are transactional.
"""

import copy
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incident_response import pipeline
from incident_response.pipeline import pipeline_sweep, runbook_debounce
from incidents.choices import IncidentStatus, TimelineKind
from incidents.ingest import store as ingest_store
from incidents.ingest.sweep import ingest_sweep
from incidents.models import Alert, AlertGroup, Incident, IngestOutbox
from incidents.services import incident_transition
from incidents.signals import announce, incident_alerts_changed
from runbooks.models import Runbook
from runbooks.tests.factories import RunbookFactory

from .ingest_helpers import eager, make_source, payload, post, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets", "eager")]


def kinds(incident: Incident) -> list[str]:
    return list(incident.timeline.order_by("created_at", "id").values_list("kind", flat=True))


def generic(title: str, **fields) -> dict:
    return {"title": title, **fields}


def test_alertmanager_group_opens_one_incident_and_asks_for_one_runbook(client):
    make_source("alertmanager")
    response = post(client, "alertmanager", payload("alertmanager/valid_group_firing.json"))
    assert response.status_code == 202, response.content
    assert response.json()["created"] == 2
    incident = Incident.objects.get()
    assert incident.title == "Checkout 5xx above 5%"
    assert incident.severity == "SEV1"  # severity=critical through the default mapping
    assert incident.service == "checkout"
    assert incident.status == IncidentStatus.INVESTIGATING
    assert set(incident.alerts.values_list("status", flat=True)) == {"firing"}
    assert incident.alerts.count() == 2
    assert incident.runbooks.count() == 1  # eager: asked at once, exactly once
    assert AlertGroup.objects.get(incident=incident).runbook_requested_at is not None
    timeline = kinds(incident)
    assert timeline.count(TimelineKind.DECLARED) == 1
    assert timeline.count(TimelineKind.ALERT_RECEIVED) == 1
    assert timeline.count(TimelineKind.RUNBOOK_QUEUED) == 1
    outbox = IngestOutbox.objects.get()
    assert outbox.processed_at is not None and outbox.dispatched_at is not None
    assert sorted(outbox.alert_ids) == sorted(incident.alerts.values_list("pk", flat=True))


def test_redelivery_of_the_same_payload_changes_nothing(client):
    make_source("alertmanager")
    body = payload("alertmanager/valid_group_firing.json")
    post(client, "alertmanager", body)
    before = list(Alert.objects.order_by("pk").values())
    events = Incident.objects.get().timeline.count()
    again = post(client, "alertmanager", copy.deepcopy(body))
    assert again.status_code == 202
    assert again.json()["unchanged"] == 2
    assert again.json()["created"] == again.json()["updated"] == 0
    assert list(Alert.objects.order_by("pk").values()) == before
    assert IngestOutbox.objects.count() == 1
    assert Incident.objects.count() == 1 and Incident.objects.get().timeline.count() == events


def test_a_repeat_updates_count_and_last_seen_never_adds_a_row(client):
    make_source("pagerduty", secret_env="HOOK_TOKEN")
    event = payload("pagerduty/valid_trigger.json")
    first = post(client, "pagerduty", event)
    assert first.status_code == 202
    assert first.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "db-replication-lag-prod-db-2",
    }
    seen = Alert.objects.get().last_seen
    event["payload"]["timestamp"] = "2024-05-01T10:05:00Z"
    assert post(client, "pagerduty", event).json()["dedup_key"] == "db-replication-lag-prod-db-2"
    alert = Alert.objects.get()
    assert alert.count == 2 and alert.last_seen > seen
    assert Incident.objects.count() == 1


def test_grouping_by_alertmanager_group_key(client):
    make_source("alertmanager", group_window_seconds=0)  # only the groupKey groups here
    body = payload("alertmanager/valid_group_firing.json")
    post(client, "alertmanager", body)
    later = copy.deepcopy(body)
    later["alerts"] = [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "payments", "instance": "p-1"},
            "annotations": {"summary": "Payments 5xx"},
            "startsAt": "2024-05-01T10:02:00Z",
        }
    ]
    post(client, "alertmanager", later)
    assert Incident.objects.count() == 1
    assert Incident.objects.get().alerts.count() == 3
    other = copy.deepcopy(later)
    other["groupKey"] = '{}:{alertname="DiskFull"}'
    other["alerts"][0]["labels"] = {"alertname": "DiskFull", "service": "payments"}
    post(client, "alertmanager", other)
    assert Incident.objects.count() == 2


def test_grouping_by_service_within_the_window(client):
    source = make_source("generic", group_window_seconds=300)
    post(client, "generic", generic("DB CPU high", service="orders", dedup_key="a"))
    post(client, "generic", generic("Queue backlog", service="orders", dedup_key="b"))
    post(client, "generic", generic("Cert expiring", service="edge", dedup_key="c"))
    assert Incident.objects.count() == 2
    orders = Incident.objects.get(service="orders")
    assert set(orders.alerts.values_list("dedup_key", flat=True)) == {"a", "b"}
    # Past the window, the same service opens a new incident.
    AlertGroup.objects.filter(incident=orders).update(
        last_alert_at=timezone.now() - timedelta(seconds=source.group_window_seconds + 1)
    )
    post(client, "generic", generic("Disk full", service="orders", dedup_key="d"))
    assert Incident.objects.filter(service="orders").count() == 2


def test_resolution_marks_alerts_cleared_without_resolving(client):
    make_source("alertmanager")
    post(client, "alertmanager", payload("alertmanager/valid_group_firing.json"))
    resolved = payload("alertmanager/valid_group_resolved.json")
    half = copy.deepcopy(resolved)
    half["alerts"] = half["alerts"][:1]
    post(client, "alertmanager", half)
    incident = Incident.objects.get()
    assert TimelineKind.ALERTS_CLEARED not in kinds(incident)  # one alert still firing
    post(client, "alertmanager", resolved)
    incident.refresh_from_db()
    assert kinds(incident).count(TimelineKind.ALERTS_CLEARED) == 1
    assert incident.status == IncidentStatus.INVESTIGATING  # a human resolves it
    assert incident.resolved_at is None
    # Firing again re-opens the clearing; clearing again says so once more.
    post(client, "alertmanager", payload("alertmanager/valid_group_firing.json"))
    assert AlertGroup.objects.get(incident=incident).cleared_at is None
    assert (
        "firing again" in incident.timeline.filter(kind=TimelineKind.ALERT_RECEIVED).first().message
    )
    assert Incident.objects.count() == 1


def test_cleared_alerts_move_to_monitoring_when_the_source_says_so(client):
    make_source("datadog", move_to_monitoring_when_cleared=True)
    post(client, "datadog", payload("datadog/valid_triggered.json"))
    incident = Incident.objects.get()
    assert incident.severity == "SEV2"  # P2
    assert incident.service == "storefront"
    post(client, "datadog", payload("datadog/valid_recovered.json"))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.MONITORING
    assert TimelineKind.ALERTS_CLEARED in kinds(incident)
    assert TimelineKind.STATUS_CHANGED in kinds(incident)


def test_pagerduty_acknowledge_and_resolve_by_dedup_key(client):
    make_source("pagerduty")
    post(client, "pagerduty", payload("pagerduty/valid_trigger.json"))
    post(client, "pagerduty", payload("pagerduty/valid_acknowledge.json"))
    alert = Alert.objects.get()
    assert alert.status == "acknowledged" and alert.title.startswith("Replication lag")
    assert TimelineKind.ALERTS_CLEARED not in kinds(alert.incident)
    post(client, "pagerduty", payload("pagerduty/valid_resolve.json"))
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.ends_at is not None
    assert TimelineKind.ALERTS_CLEARED in kinds(alert.incident)
    # Resolving a key never seen is accepted, as PagerDuty does, and stores nothing.
    unknown = payload("pagerduty/valid_resolve.json") | {"dedup_key": "never-seen"}
    response = post(client, "pagerduty", unknown)
    assert response.status_code == 202 and response.json()["dedup_key"] == "never-seen"
    assert Alert.objects.count() == 1


def test_severity_rises_with_a_worse_alert(client):
    make_source("generic")
    post(client, "generic", generic("Latency up", service="api", severity="warning", dedup_key="l"))
    incident = Incident.objects.get()
    assert incident.severity == "SEV3"
    post(client, "generic", generic("API down", service="api", severity="critical", dedup_key="d"))
    incident.refresh_from_db()
    assert incident.severity == "SEV1"
    assert TimelineKind.SEVERITY_CHANGED in kinds(incident)


def test_source_severity_mapping_wins(client):
    make_source("generic", severity_mapping={"warning": "SEV2"})
    post(client, "generic", generic("Latency up", service="api", severity="Warning"))
    assert Incident.objects.get().severity == "SEV2"


def test_suspend_window_a_quick_resolve_opens_nothing(client):
    make_source("generic", suspend_seconds=300)
    post(client, "generic", generic("Flap", service="api", dedup_key="flap"))
    post(client, "generic", generic("Slow burn", service="db", dedup_key="burn"))
    assert Incident.objects.count() == 0  # both inside their suspend window
    assert Alert.objects.filter(incident__isnull=True).count() == 2
    post(client, "generic", generic("Flap", service="api", dedup_key="flap", status="resolved"))
    later = timezone.now() + timedelta(seconds=301)
    report = ingest_sweep(now=later)
    assert report.alerts_due == 1
    # The flapping alert never opened anything; the one still firing did, once due.
    assert Alert.objects.get(dedup_key="flap").incident is None
    incident = Incident.objects.get()
    assert incident.service == "db"
    assert ingest_sweep(now=later).alerts_due == 0
    assert Incident.objects.count() == 1


def test_human_resolved_incident_is_not_reopened_by_the_same_firing_alert(client):
    make_source("generic")
    body = generic("Disk full", service="files", dedup_key="disk")
    post(client, "generic", body)
    incident = Incident.objects.get()
    incident_transition(incident=incident, to_status=IncidentStatus.RESOLVED)
    post(client, "generic", body)  # Alertmanager-style repeat of the same occurrence
    assert Incident.objects.count() == 1
    # A new occurrence after the resolution is a new incident.
    post(client, "generic", body | {"timestamp": "2030-01-01T00:00:00Z"})
    assert Incident.objects.count() == 2
    assert Alert.objects.get().incident != incident


def test_storm_of_ten_thousand_alerts_is_one_incident_and_one_runbook(client, settings):
    settings.INGEST_MAX_ALERTS_PER_PAYLOAD = 1000
    make_source("generic")
    for batch in range(10):
        alerts = [
            generic(f"Pod crashloop {batch}-{i}", service="checkout", dedup_key=f"pod-{batch}-{i}")
            for i in range(1000)
        ]
        response = post(client, "generic", alerts)
        assert response.status_code == 202 and response.json()["created"] == 1000
    assert Alert.objects.count() == 10_000
    incident = Incident.objects.get()
    assert incident.alerts.count() == 10_000
    assert Runbook.objects.count() == 1
    assert kinds(incident).count(TimelineKind.ALERT_RECEIVED) == 10  # one per delivery
    assert IngestOutbox.objects.filter(processed_at__isnull=True).count() == 0


def test_runbook_is_debounced_while_alerts_keep_arriving(client, settings):
    settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS = 30
    settings.INGEST_RUNBOOK_MAX_WAIT_SECONDS = 300
    make_source("generic")
    post(client, "generic", generic("First", service="search", dedup_key="1"))
    incident = Incident.objects.get()
    # Take back the eager request so the worker-mode debounce can be exercised.
    Runbook.objects.all().delete()
    AlertGroup.objects.update(runbook_requested_at=None)
    group = AlertGroup.objects.get()
    t0 = group.opened_at
    AlertGroup.objects.update(last_alert_at=t0 + timedelta(seconds=20))
    assert runbook_debounce(incident_id=incident.pk, now=t0 + timedelta(seconds=25)) == 25
    assert incident.runbooks.count() == 0
    assert runbook_debounce(incident_id=incident.pk, now=t0 + timedelta(seconds=50)) is None
    assert incident.runbooks.count() == 1
    assert runbook_debounce(incident_id=incident.pk, now=t0 + timedelta(seconds=500)) is None
    assert incident.runbooks.count() == 1


def test_a_never_ending_storm_still_gets_its_runbook_at_the_ceiling_of_waiting(client, settings):
    settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS = 30
    settings.INGEST_RUNBOOK_MAX_WAIT_SECONDS = 120
    make_source("generic")
    post(client, "generic", generic("First", service="search", dedup_key="1"))
    Runbook.objects.all().delete()
    AlertGroup.objects.update(runbook_requested_at=None)
    group = AlertGroup.objects.get()
    now = group.opened_at + timedelta(seconds=121)
    AlertGroup.objects.update(last_alert_at=now)  # alerts still arriving
    assert runbook_debounce(incident_id=group.incident_id, now=now) is None
    assert Runbook.objects.count() == 1


def test_concurrent_generations_have_a_ceiling(client, settings):
    settings.INGEST_MAX_CONCURRENT_GENERATIONS = 2
    settings.INGEST_GENERATION_RETRY_SECONDS = 15
    make_source("generic", group_window_seconds=0)
    for name in ("a", "b", "c"):
        post(client, "generic", generic(f"Alert {name}", service=name, dedup_key=name))
    Runbook.objects.all().delete()
    AlertGroup.objects.update(runbook_requested_at=None)
    incidents = list(Incident.objects.order_by("pk"))
    # Two generations in flight (queued, as when the worker is busy): the third waits.
    for incident in incidents[:2]:
        RunbookFactory(incident=incident, status="queued")
    later = timezone.now() + timedelta(hours=1)
    assert runbook_debounce(incident_id=incidents[2].pk, now=later) == 15
    assert incidents[2].runbooks.count() == 0
    Runbook.objects.filter(incident=incidents[0]).update(status="ready")
    assert runbook_debounce(incident_id=incidents[2].pk, now=later) is None
    assert incidents[2].runbooks.count() == 1


def test_the_sweeper_asks_for_a_runbook_whose_debounce_task_was_lost(client, settings):
    make_source("generic")
    post(client, "generic", generic("First", service="search", dedup_key="1"))
    Runbook.objects.all().delete()
    AlertGroup.objects.update(runbook_requested_at=None)
    assert pipeline_sweep().runbooks_checked == 0  # not yet quiet for long enough
    report = pipeline_sweep(now=timezone.now() + timedelta(minutes=10))
    assert report.runbooks_checked == 1
    assert Runbook.objects.count() == 1


def test_an_opened_incident_asks_for_its_runbook_through_incident_alerts_changed(
    client, monkeypatch
):
    asked: list[int] = []
    real = pipeline.runbook_schedule

    def spy(*, incident_id: int, **kwargs) -> None:
        asked.append(incident_id)
        real(incident_id=incident_id, **kwargs)

    monkeypatch.setattr(pipeline, "runbook_schedule", spy)
    make_source("generic")
    post(client, "generic", generic("First", service="search", dedup_key="1"))
    incident = Incident.objects.get()
    assert asked == [incident.pk]  # once, from the pipeline's receiver
    assert incident.runbooks.count() == 1
    assert AlertGroup.objects.get().runbook_requested_at is not None


@contextmanager
def nobody_listening():
    """incident_alerts_changed with no receiver, as when the pipeline app is missing."""
    signal = incident_alerts_changed
    with signal.lock:
        saved = signal.receivers
        signal.receivers = []
        signal.sender_receivers_cache.clear()
    try:
        yield
    finally:
        with signal.lock:
            signal.receivers = saved
            signal.sender_receivers_cache.clear()


def test_without_the_pipeline_an_alert_opens_nothing_and_says_why(client):
    make_source("generic")
    with nobody_listening():
        with pytest.raises(RuntimeError, match="no stage listens"):
            announce(incident_alerts_changed, incident_id=1)
        response = post(client, "generic", generic("First", service="search", dedup_key="1"))
    assert response.status_code == 202  # accepted and stored all the same
    assert Incident.objects.count() == 0 and Runbook.objects.count() == 0
    outbox = IngestOutbox.objects.get()
    assert outbox.processed_at is None and "no stage listens" in outbox.last_error


def test_the_sweeper_opens_what_waited_for_the_pipeline(client, settings):
    settings.INGEST_OUTBOX_GRACE_SECONDS = 0
    make_source("generic")
    with nobody_listening():
        post(client, "generic", generic("First", service="search", dedup_key="1"))
    assert Incident.objects.count() == 0
    assert ingest_sweep().outbox_processed == 1
    incident = Incident.objects.get()
    assert incident.runbooks.count() == 1


def _integrity_error(**fields) -> IntegrityError:
    """A real IntegrityError from this database (the message and cause differ per backend)."""
    try:
        with transaction.atomic():
            now = timezone.now()
            Alert.objects.create(**{"title": "x", "first_seen": now, "last_seen": now, **fields})
    except IntegrityError as exc:
        return exc
    raise AssertionError("no IntegrityError")


def _store_failing_once(monkeypatch, exc: IntegrityError) -> list[int]:
    calls: list[int] = []
    real = ingest_store._store

    def store(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_store, "_store", store)
    return calls


def test_the_dedup_race_is_retried(monkeypatch):
    source = make_source("generic")
    now = timezone.now()
    Alert.objects.create(source=source, dedup_key="dup", title="x", first_seen=now, last_seen=now)
    race = _integrity_error(source=source, dedup_key="dup")
    calls = _store_failing_once(monkeypatch, race)
    result = ingest_store.alert_ingest(source=source, payload=generic("Disk full"))
    assert len(calls) == 2 and result.created == 1


def test_other_integrity_errors_are_not_retried(monkeypatch):
    source = make_source("generic")
    other = _integrity_error(source_id=None, dedup_key="k")  # NOT NULL, not the race
    calls = _store_failing_once(monkeypatch, other)
    with pytest.raises(IntegrityError):
        ingest_store.alert_ingest(source=source, payload=generic("Disk full"))
    assert len(calls) == 1


def test_a_group_found_by_service_is_looked_up_once_per_batch(client):
    make_source("generic", group_window_seconds=300)
    post(client, "generic", generic("DB CPU high", service="orders", dedup_key="a", group_key="g1"))

    def group_lookups(n: int, prefix: str) -> int:
        alerts = [
            generic(
                f"Queue backlog {i}", service="orders", dedup_key=f"{prefix}{i}", group_key=prefix
            )
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as ctx:
            assert post(client, "generic", alerts).status_code == 202
        return sum('"group_key"' in q["sql"] for q in ctx.captured_queries)

    group_lookups(1, "w")  # the first delivery after opening also updates the AlertGroup
    assert group_lookups(2, "x") == group_lookups(8, "y")
    assert Incident.objects.count() == 1
