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


def test_alert_labels_of_a_past_incident_are_searched():
    from incidents.tests.factories import AlertFactory

    now = IncidentFactory(title="Orders consumer KafkaConsumerLag topic=orders", service="orders")
    past = IncidentFactory(title="Backlog growing", service="orders", status="resolved")
    AlertFactory(
        incident=past,
        title="consumer falling behind",
        labels={"alertname": "KafkaConsumerLag", "topic": "orders"},
    )
    IncidentFactory(title="Disk full on the kafka broker", service="kafka", status="resolved")

    found = similar_incidents(incident_id=now.pk, text=now.title, service="orders")

    assert found and found[0]["id"] == past.pk, connection.vendor


def test_a_published_postmortem_is_what_the_next_similar_incident_shows(settings):
    from learning.models import Postmortem
    from learning.services import postmortem_transition, postmortem_update
    from learning.tests.factories import worked_incident

    settings.ANTHROPIC_API_KEY = ""
    past = worked_incident()
    pm = past.postmortem
    postmortem_update(
        postmortem=pm,
        actor=None,
        root_cause="The checkout release leaked database connections until the pool ran dry.",
    )
    Postmortem.objects.filter(pk=pm.pk).update(root_cause_category="deployment_issue")
    now = IncidentFactory(title="Checkout pool exhausted again", service="checkout")

    # Not published yet: nothing learned.
    assert (
        similar_incidents(incident_id=now.pk, text=now.title, service="checkout")[0]["outcome"]
        is None
    )
    postmortem_transition(postmortem=pm, to_status="in_review", actor=None)
    postmortem_transition(postmortem=pm, to_status="published", actor=None)

    [found] = similar_incidents(incident_id=now.pk, text=now.title, service="checkout")
    assert found["id"] == past.pk
    assert "leaked database connections" in found["outcome"]["root_cause"]
    assert found["outcome"]["category"] == "deployment_issue"
    # The step that succeeded resolved it (the one that failed did not).
    assert found["resolution"][0].startswith("Resolved by restart_pool")
    assert not any("kill_queries" in line for line in found["resolution"])
    # The words of the root cause are searched too.
    [by_cause] = similar_incidents(
        incident_id=now.pk, text="connections leaked by a release", service="payments"
    )
    assert by_cause["id"] == past.pk
