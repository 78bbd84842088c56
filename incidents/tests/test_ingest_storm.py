"""Amplification: alerts without keys group by their labels, and a source opens a bounded
number of incidents (and so of runbook generations); the rest join its storm incident."""

import pytest

from incidents.choices import TimelineKind
from incidents.models import Alert, AlertGroup, Incident
from runbooks.models import Runbook

from .ingest_helpers import eager, make_source, post, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets", "eager")]


@pytest.fixture
def storm_settings(settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.INGEST_MAX_ALERTS_PER_PAYLOAD = 1000
    settings.INGEST_STORM_MAX_INCIDENTS = 20
    settings.INGEST_STORM_WINDOW_SECONDS = 300
    return settings


def _counted(incident: Incident) -> int:
    events = incident.timeline.filter(kind=TimelineKind.ALERT_RECEIVED)
    return sum(e.payload["count"] for e in events)


def test_a_thousand_alerts_without_keys_open_a_bounded_number_of_incidents(client, storm_settings):
    make_source("generic")
    alerts = [
        {"title": f"Job {i} failed", "labels": {"job": f"job-{i}", "timestamp": str(i)}}
        for i in range(1000)
    ]
    response = post(client, "generic", alerts)
    assert response.status_code == 202 and response.json()["created"] == 1000
    # Twenty of their own, and one storm incident for the rest: not a thousand.
    assert Incident.objects.count() == 21
    assert Runbook.objects.count() <= 21
    storm = Incident.objects.get(alert_group__storm=True)
    assert storm.title == "Alert storm from generic"
    assert storm.alerts.count() == 980
    assert _counted(storm) == 980  # its timeline counts them
    assert Alert.objects.filter(incident__isnull=True).count() == 0

    # The next delivery still joins the storm, not a new incident.
    post(client, "generic", [{"title": "Job x failed", "labels": {"job": "x"}}])
    assert Incident.objects.count() == 21
    assert _counted(storm) == 981


def test_the_same_labels_twice_are_one_incident(client, storm_settings):
    make_source("generic", group_window_seconds=300)
    labels = {"alertname": "DiskFull", "host": "db-1"}
    post(client, "generic", {"title": "Disk full", "labels": {**labels, "timestamp": "1"}})
    post(client, "generic", {"title": "Disk 97% full", "labels": {**labels, "timestamp": "2"}})
    assert Alert.objects.count() == 2  # two alerts (their volatile label differs)...
    incident = Incident.objects.get()  # ...one incident
    assert incident.alerts.count() == 2
    assert AlertGroup.objects.get().fingerprint != ""
    # Other labels: another incident.
    post(client, "generic", {"title": "Disk full", "labels": {**labels, "host": "db-2"}})
    assert Incident.objects.count() == 2


def test_labels_group_only_within_the_source_window(client, storm_settings):
    make_source("generic", group_window_seconds=0)
    labels = {"alertname": "DiskFull", "host": "db-1"}
    post(client, "generic", {"title": "Disk full", "labels": labels, "dedup_key": "a"})
    post(client, "generic", {"title": "Disk full", "labels": labels, "dedup_key": "b"})
    assert Incident.objects.count() == 2


def test_the_storm_incident_collects_the_overflow(client, storm_settings):
    storm_settings.INGEST_STORM_MAX_INCIDENTS = 3
    make_source("generic", group_window_seconds=0)
    for i in range(3):
        post(client, "generic", {"title": f"Alert {i}", "service": f"svc-{i}"})
    assert Incident.objects.count() == 3
    for i in range(3, 8):
        post(client, "generic", {"title": f"Alert {i}", "service": f"svc-{i}"})
    assert Incident.objects.count() == 4
    storm = Incident.objects.get(alert_group__storm=True)
    assert storm.title.startswith("Alert storm from")
    assert sorted(storm.alerts.values_list("title", flat=True)) == [
        f"Alert {i}" for i in range(3, 8)
    ]
    assert _counted(storm) == 5
    assert storm.runbooks.count() == 1  # one generation for the whole overflow
    # Another source is not held by this one's storm.
    make_source("generic", slug="other")
    post(client, "other", {"title": "Elsewhere", "service": "svc-x"})
    assert Incident.objects.count() == 5
