"""The context stage's readers over the real servers: the catalog's golden-signal
queries against Prometheus, error lines from Loki (and its stand-in), secrets scrubbed."""

import time
import uuid

import pytest

from executor import evidence_source
from executor.tests.factories import ServiceFactory, TargetFactory
from testing.fakes.loki import loki_count, loki_push
from testing.fakes.prometheus import prom_vector
from testing.waiting import wait_until

pytestmark = pytest.mark.django_db


def test_catalog_signals_are_range_queried_from_prometheus(prometheus, exporter):
    exporter.set("incident_test_gauge", 7.0, case="evidence")
    wait_until(
        lambda: (
            [v for _, v in prom_vector(prometheus.url, 'incident_test_gauge{case="evidence"}')]
            == [7.0]
        ),
        timeout=20,
        what="Prometheus to scrape the gauge",
    )
    prom = TargetFactory(name="prom", kind="prometheus", base=prometheus.url)
    ServiceFactory(
        name="checkout",
        targets=[prom],
        golden_signals={"saturation": 'incident_test_gauge{case="evidence"}', "traffic": ""},
        dependencies=["payments"],
    )
    readers = evidence_source.for_service("checkout")
    assert readers.signals == {"saturation": 'incident_test_gauge{case="evidence"}'}
    assert readers.dependencies == ["payments"] and readers.logs is None
    now = time.time()
    points = readers.metric_range(
        readers.signals["saturation"],
        start=now - 60,
        end=now,
        step=1,
        deadline=time.monotonic() + 10,
    )
    assert (
        points
        and points[-1][1] == 7.0
        and all(a[0] < b[0] for a, b in zip(points, points[1:], strict=False))
    )
    assert (
        readers.log_lines(start=now - 60, end=now, limit=10, deadline=time.monotonic() + 5) is None
    )


def test_error_lines_come_from_loki_between_two_times(loki_url):
    service = f"svc-{uuid.uuid4().hex[:10]}"
    lines = ["info: fine", "error: pool exhausted", "error: pool exhausted again"]
    loki_push(loki_url, {"service": service}, lines)
    wait_until(lambda: loki_count(loki_url, service) == 3, timeout=20, what="lines queryable")
    logs = TargetFactory(name="logs", kind="loki", base=loki_url)
    ServiceFactory(name=service, targets=[logs])
    readers = evidence_source.for_service(service)
    now = time.time()
    found = readers.log_lines(
        start=now - 300, end=now + 5, limit=100, deadline=time.monotonic() + 10
    )
    assert [line for _, line in found] == ["error: pool exhausted", "error: pool exhausted again"]
    assert found[0][0] <= found[1][0]
