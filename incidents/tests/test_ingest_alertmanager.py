"""A real Alertmanager sends its webhooks to our live server: the incident opens, groups
alerts of one group, and clears when they resolve."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from incidents.choices import TimelineKind
from incidents.models import Alert, Incident
from testing.waiting import wait_until

from .ingest_helpers import make_source, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets")]


def push(base: str, alerts: list[dict]) -> None:
    response = httpx.post(f"{base}/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text


def alert(instance: str, *, ended: bool = False, name: str = "HighLatency") -> dict:
    now = datetime.now(UTC)
    body = {
        "labels": {
            "alertname": name,
            "service": "checkout",
            "severity": "warning",
            "instance": instance,
        },
        "annotations": {"summary": f"{name} on checkout", "description": f"p99 high on {instance}"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://prometheus.example.internal:9090/graph",
    }
    if ended:
        body["endsAt"] = (now - timedelta(seconds=1)).isoformat()
    return body


def test_real_alertmanager_opens_groups_and_clears(alertmanager, pipeline):
    make_source("alertmanager", slug="am")
    push(alertmanager, [alert("checkout-1"), alert("checkout-2")])
    incident = wait_until(
        lambda: Incident.objects.filter(alerts__isnull=False).distinct().first(),
        timeout=30,
        what="the first notification to open an incident",
    )
    wait_until(lambda: incident.alerts.count() == 2, timeout=30, what="both alerts on the incident")
    assert incident.service == "checkout" and incident.severity == "SEV3"
    first = Alert.objects.first()
    assert first.group_key and first.source_url == "http://prometheus.example.internal:9090/graph"

    # A third alert of the same group joins the same incident.
    push(alertmanager, [alert("checkout-3")])
    wait_until(lambda: incident.alerts.count() == 3, timeout=30, what="the third alert to group")
    assert Incident.objects.count() == 1
    assert len(set(Alert.objects.values_list("group_key", flat=True))) == 1

    # All three resolve (endsAt in the past): Alertmanager sends them resolved; we clear.
    push(alertmanager, [alert(f"checkout-{i}", ended=True) for i in (1, 2, 3)])
    wait_until(
        lambda: incident.timeline.filter(kind=TimelineKind.ALERTS_CLEARED).exists(),
        timeout=30,
        what="the resolved notification to clear the incident",
    )
    assert set(incident.alerts.values_list("status", flat=True)) == {"resolved"}
    incident.refresh_from_db()
    assert incident.status == "investigating"  # a person resolves it
    assert Incident.objects.count() == 1
