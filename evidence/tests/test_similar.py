"""Similar past incidents: PostgreSQL full-text and pg_trgm, or word overlap on SQLite."""

import pytest
from django.db import connection

from evidence.similar import similar_incidents
from incidents.events import note_added_event
from incidents.tests.factories import IncidentFactory

pytestmark = pytest.mark.django_db


def test_resolved_look_alikes_are_found_with_what_resolved_them():
    now = IncidentFactory(title="Checkout p99 latency above 3s", service="checkout")
    alike = IncidentFactory(
        title="Checkout latency above SLO after deploy", service="checkout", status="resolved"
    )
    note_added_event(incident=alike, actor=None, text="rolled back to v2.13, latency normal")
    IncidentFactory(title="Checkout latency high", service="checkout")  # still open
    IncidentFactory(
        title="Disk full on the kafka broker",
        description="Broker stopped accepting writes.",
        service="kafka",
        status="resolved",
    )

    found = similar_incidents(incident_id=now.pk, text=f"{now.title} checkout", service="checkout")

    assert [f["id"] for f in found] == [alike.pk], connection.vendor
    assert any("rolled back" in line for line in found[0]["resolution"])
    assert found[0]["score"] > 0


def test_nothing_alike_finds_nothing():
    now = IncidentFactory(title="Payments webhook signature failures", service="payments")
    IncidentFactory(title="Disk full on the kafka broker", service="kafka", status="resolved")
    assert similar_incidents(incident_id=now.pk, text=now.title, service="payments") == []
