"""The incident page shows the evidence: change strip, sparklines with the onset, log
templates with "new" badges, similar incidents, hypotheses linked to their evidence."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from evidence.models import Evidence, EvidenceSet
from incidents.tests.factories import IncidentFactory
from runbooks.tests.factories import ready_runbook, sample_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_in(client):
    user = get_user_model().objects.create_user("ev", password="pw-123456")  # noqa: S106
    client.force_login(user)
    return client


def test_the_evidence_section(client_in):
    incident = IncidentFactory(service="checkout")
    past = IncidentFactory(title="Checkout latency after deploy", status="resolved")
    onset = timezone.now()
    evidence_set = EvidenceSet.objects.create(incident=incident, onset=onset)
    t = onset.timestamp()
    points = [[t - 600 + 60 * i, 1.0 if i < 8 else 9.0] for i in range(12)]

    def item(key, collector, summary, data):
        Evidence.objects.create(
            evidence_set=evidence_set,
            incident=incident,
            key=key,
            collector=collector,
            summary=summary,
            data=data,
            status="ok",
        )

    item("E1", "changes", "Deploy of checkout v2.14 (from v2.13), 5 min before onset",
         {"kind": "deploy", "minutes_before_onset": 5.0})  # fmt: skip
    item("E2", "metrics", "latency moved up", {"signal": "latency", "points": points,
         "change": {"time": points[8][0], "direction": "up"}})  # fmt: skip
    item("E3", "logs", "NEW log template", {"template": "ERROR <script>x</script> <*>",
         "count": 7, "new": True})  # fmt: skip
    item("E4", "similar", "Similar", {"id": past.pk, "title": past.title, "status": "resolved",
         "resolution": ["deploy.rollback succeeded"]})  # fmt: skip
    document = sample_document()
    document["diagnosis"] = {
        "status": "diagnosed",
        "hypotheses": [
            {
                "category": "deployment_issue",
                "component": "checkout",
                "statement": "The v2.14 deploy",
                "evidence": ["E1", "E2"],
                "confidence": 0.6,
            }
        ],
        "unavailable": ["deploy.rollback not available: no fly target for checkout"],
    }
    ready_runbook(document, incident=incident)

    page = client_in.get(f"/incidents/{incident.pk}/").content.decode()

    section = page[page.index('id="evidence"') :]
    assert "deployment_issue" in section and 'href="#ev-E1"' in section
    assert 'id="ev-E1"' in section and "▲" in section
    assert "<polyline" in section and 'class="onset"' in section
    assert '<span class="badge b-bad">new</span>' in section
    assert "<script>x</script>" not in section and "&lt;script&gt;" in section
    assert f'href="/incidents/{past.pk}/"' in section and "deploy.rollback succeeded" in section
    assert "no fly target for checkout" in section


def test_no_evidence_no_section(client_in):
    incident = IncidentFactory()
    assert 'id="evidence"' not in client_in.get(f"/incidents/{incident.pk}/").content.decode()
