"""A real Alertmanager sends its webhooks to our live server: the incident opens, groups
alerts of one group, and clears when they resolve."""

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import free_port, need_service, port_open, wait_until
from incidents.choices import TimelineKind
from incidents.models import Alert, Incident

from .ingest_helpers import TOKEN, make_source, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets")]

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

CONFIG = """
route:
  receiver: incident-response
  group_by: ["alertname"]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incident-response
    webhook_configs:
      - url: "{url}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{token}"
"""


@pytest.fixture
def alertmanager(django_db_setup, live_server, tmp_path: Path):
    # django_db_setup first: the test database must exist before the session's live server
    # starts, or the server opens an in-memory SQLite connection of its own and reads here
    # fail with "database table is locked" while a request writes.
    if not BINARY:
        need_service("Alertmanager", "the prometheus-alertmanager binary is not installed")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=f"{live_server.url}/hooks/am/", token=TOKEN))
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(
                f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}"
            )
        if not port_open("127.0.0.1", port):
            return False
        return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200

    wait_until(ready, timeout=30, what="Alertmanager to be ready")
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


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
