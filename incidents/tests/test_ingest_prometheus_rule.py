"""A real Prometheus evaluates a real alerting rule and a real Alertmanager posts the alert to
our live server: the incident opens; the condition clears, Prometheus resolves the alert,
Alertmanager sends the resolved notification and the incident's alerts clear.

The rule watches a gauge the test sets on a local exporter that Prometheus scrapes every
second, so the alert fires and resolves because of real samples, not a pushed payload.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from incidents.choices import AlertStatus, Severity, TimelineKind
from incidents.models import Alert, Incident
from testing.fakes.prometheus import Exporter, prom_vector, prometheus_binary, start_prometheus
from testing.processes import Proc
from testing.services import WORKER_LOG, need_service
from testing.waiting import wait_until

from .ingest_helpers import make_source, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secrets")]

METRIC = "app_error_ratio"
HIGH, LOW = 0.9, 0.1

RULES = """
groups:
  - name: checkout
    rules:
      - alert: HighErrorRatio
        expr: app_error_ratio > 0.5
        for: 0s
        labels:
          severity: critical
          service: checkout
        annotations:
          summary: Checkout error ratio above 50%
          description: "app_error_ratio is {{ $value }} on {{ $labels.instance }}"
"""


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    server = Exporter()
    server.set(METRIC, 0.0)
    yield server
    server.stop()


@pytest.fixture
def prometheus(tmp_path: Path, exporter: Exporter, alertmanager: str) -> Iterator[Proc]:
    """Prometheus with the rule above, sending its alerts to the `alertmanager` fixture."""
    binary = prometheus_binary()
    if not binary:
        need_service("Prometheus", "no prometheus binary (apt-get install prometheus)")
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    prom = start_prometheus(binary, workdir, exporter.port, rules=RULES, alertmanager=alertmanager)
    yield prom
    prom.stop()


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def _get(url: str) -> str:
    try:
        return httpx.get(url, timeout=2).text[:2000]
    except httpx.HTTPError as exc:
        return f"({exc!r})"


def test_prometheus_rule_opens_and_clears_incident(
    tmp_path,
    exporter,
    prometheus,
    alertmanager,  # noqa: F811
    pipeline,
):
    source = make_source("alertmanager", slug="am")
    am_log = tmp_path / "alertmanager.log"

    def wait(predicate: Callable[[], object], what: str, timeout: float = 60) -> object:
        """wait_until, with what both servers and our database say when it times out."""
        try:
            return wait_until(predicate, timeout=timeout, what=what)
        except AssertionError as exc:
            worker = ""
            if pipeline is not None:
                worker = f"\n--- worker log ---\n{_tail(WORKER_LOG)}"
            alerts = list(Alert.objects.values("status", "labels", "incident_id"))
            raise AssertionError(
                f"{exc}\n({prometheus.extra['version']})"
                f"\n--- {METRIC} in Prometheus: {prom_vector(prometheus.url, METRIC)}"
                f"\n--- Prometheus /api/v1/alerts ---\n{_get(prometheus.url + '/api/v1/alerts')}"
                f"\n--- Alertmanager /api/v2/alerts ---\n{_get(alertmanager + '/api/v2/alerts')}"
                f"\n--- our alerts: {alerts}"
                f"\n--- prometheus log ---\n{prometheus.log_tail()}"
                f"\n--- alertmanager log ---\n{_tail(am_log)}{worker}"
            ) from None

    # Below the threshold: Prometheus is evaluating the rule and nothing fires.
    assert Incident.objects.count() == 0

    # The error ratio rises: the rule fires and the alert travels to us.
    exporter.set(METRIC, HIGH)
    incident = wait(
        lambda: Incident.objects.filter(alerts__labels__alertname="HighErrorRatio").first(),
        "Prometheus → Alertmanager → our webhook to open an incident",
    )
    alert = Alert.objects.get()
    assert alert.incident_id == incident.pk and alert.source_id == source.pk
    assert alert.status == AlertStatus.FIRING
    instance = f"127.0.0.1:{exporter.port}"
    assert alert.labels == {
        "alertname": "HighErrorRatio",
        "service": "checkout",
        "severity": "critical",
        "job": "exporter",
        "instance": instance,
    }
    assert alert.annotations == {
        "summary": "Checkout error ratio above 50%",
        "description": f"app_error_ratio is {HIGH} on {instance}",
    }
    assert alert.title == "Checkout error ratio above 50%"
    assert alert.source_severity == "critical" and alert.severity == Severity.SEV1
    assert alert.service == "checkout" and alert.group_key
    # Prometheus's generatorURL: the graph of the rule's expression at --web.external-url.
    assert alert.source_url.startswith(f"{prometheus.url}/graph?"), alert.source_url
    assert "g0.expr=app_error_ratio" in alert.source_url, alert.source_url
    assert alert.starts_at is not None and alert.ends_at is None
    incident.refresh_from_db()
    assert incident.service == "checkout" and incident.severity == Severity.SEV1
    assert not incident.timeline.filter(kind=TimelineKind.ALERTS_CLEARED).exists()

    # The ratio falls: Prometheus resolves the alert; Alertmanager sends it resolved.
    exporter.set(METRIC, LOW)
    wait(
        lambda: incident.timeline.filter(kind=TimelineKind.ALERTS_CLEARED).exists(),
        "the resolved notification to clear the incident's alerts",
    )
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.ends_at is not None and alert.ends_at >= alert.starts_at
    cleared = incident.timeline.get(kind=TimelineKind.ALERTS_CLEARED)
    assert cleared.payload == {"alerts": 1}
    incident.refresh_from_db()
    assert incident.status == "investigating"  # a person resolves it
    assert Incident.objects.count() == 1 and Alert.objects.count() == 1
