"""MTTA/MTTR/time to detect against figures worked out by hand, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents.tests.factories import AlertFactory, AlertSourceFactory, IncidentFactory
from learning.reliability import reliability, severity_mix

pytestmark = pytest.mark.django_db

# Two ISO weeks: Monday 2026-11-02 and Monday 2026-11-09.
W1 = datetime(2026, 11, 2, tzinfo=UTC)
W2 = datetime(2026, 11, 9, tzinfo=UTC)
M = timedelta(minutes=1)


def _incident(detected, *, ack=None, resolve=None, severity="SEV2", service="checkout"):
    return IncidentFactory(
        detected_at=detected,
        acknowledged_at=detected + ack if ack is not None else None,
        resolved_at=detected + resolve if resolve is not None else None,
        severity=severity,
        service=service,
    )


@pytest.fixture
def fixture_incidents():
    # Week 1, checkout: acks 2, 4, 10 min; resolves 30, 60, 90 min; one alert 5 min early.
    a = _incident(W1 + timedelta(hours=1), ack=2 * M, resolve=30 * M)
    _incident(W1 + timedelta(days=1), ack=4 * M, resolve=60 * M)
    _incident(W1 + timedelta(days=2), ack=10 * M, resolve=90 * M, severity="SEV1")
    source = AlertSourceFactory()
    AlertFactory(incident=a, source=source, starts_at=a.detected_at - 5 * M)
    AlertFactory(
        incident=a, source=source, starts_at=a.detected_at - 3 * M
    )  # later start: not the first
    # Week 1, search: acknowledged 1 min, still open.
    _incident(W1 + timedelta(days=3), ack=1 * M, service="search", severity="SEV3")
    # Week 2: one never acknowledged, resolved after 20 min.
    _incident(W2 + timedelta(hours=5), resolve=20 * M)
    # Outside the window.
    _incident(W2 + timedelta(days=10), ack=M, resolve=M)


def test_weekly_figures_match_the_hand_computed_ones(fixture_incidents):
    rows = reliability(since=W1, until=W2 + timedelta(days=7), bucket="week")
    assert [(r.bucket, r.group, r.count) for r in rows] == [
        ("2026-11-02", "", 4),
        ("2026-11-09", "", 1),
    ]
    week1, week2 = rows
    # Acks 1, 2, 4, 10 min: mean 4.25 min; p50 = 3 min; p90 = 4 + 0.7 * 6 = 8.2 min.
    assert week1.get("tta", "n") == 4
    assert week1.get("tta", "mean") == pytest.approx(4.25 * 60, abs=0.5)
    assert week1.get("tta", "p50") == pytest.approx(3 * 60, abs=0.5)
    assert week1.get("tta", "p90") == pytest.approx(8.2 * 60, abs=0.5)
    # Resolves 30, 60, 90 min (the open one has none): p90 = 60 + 0.8 * 30 = 84 min.
    assert week1.get("ttr", "n") == 3
    assert week1.get("ttr", "mean") == pytest.approx(60 * 60, abs=0.5)
    assert week1.get("ttr", "p50") == pytest.approx(60 * 60, abs=0.5)
    assert week1.get("ttr", "p90") == pytest.approx(84 * 60, abs=0.5)
    # Time to detect: only the incident with alerts, from the earliest start.
    assert week1.get("ttd", "n") == 1
    assert week1.get("ttd", "mean") == pytest.approx(5 * 60, abs=0.5)
    assert week2.get("tta", "n") == 0 and week2.get("tta", "p50") is None
    assert week2.get("ttr", "p50") == pytest.approx(20 * 60, abs=0.5)


def test_per_service_and_severity_and_month(fixture_incidents):
    by_service = reliability(since=W1, until=W2, bucket="week", group="service")
    assert [(r.group, r.count) for r in by_service] == [("checkout", 3), ("search", 1)]
    assert by_service[0].get("tta", "p50") == pytest.approx(4 * 60, abs=0.5)
    assert by_service[1].get("tta", "p90") == pytest.approx(60, abs=0.5)
    by_severity = reliability(since=W1, until=W2 + timedelta(days=7), group="severity")
    assert [(r.bucket, r.group, r.count) for r in by_severity] == [
        ("2026-11-02", "SEV1", 1),
        ("2026-11-02", "SEV2", 2),
        ("2026-11-02", "SEV3", 1),
        ("2026-11-09", "SEV2", 1),
    ]
    month = reliability(since=W1, until=W2 + timedelta(days=30), bucket="month")
    assert [(r.bucket, r.count) for r in month] == [("2026-11-01", 6)]
    mix = severity_mix(since=W1, until=W2 + timedelta(days=7))
    assert sum(m["count"] for m in mix) == 5


def test_a_fixed_number_of_queries(fixture_incidents, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        reliability(since=W1, until=W2 + timedelta(days=7), group="service")
