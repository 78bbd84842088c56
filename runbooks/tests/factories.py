"""Runbooks in the state the pipeline leaves them: stored artifact, recorded sha256."""

import copy

from django.utils import timezone

from incidents.tests.factories import IncidentFactory
from runbooks.artifacts import artifact_store
from runbooks.choices import RunbookAuthor, RunbookStatus
from runbooks.models import Runbook

SAMPLE_DOCUMENT = {
    "incident_type": "performance_degradation",
    "affected_system": "checkout-db",
    "confidence": 0.7,
    "hypotheses": ["missing statistics on the orders table"],
    "checks": [
        {"id": "check_health", "action": "http.health_check", "params": {}},
    ],
    "recommended_actions": [
        {
            "id": "notify_team",
            "action": "alert.notify",
            "safe": True,
            "params": {"message": "Looking into checkout latency"},
            "rationale": "Keep people informed.",
        },
    ],
    "rollback_plan": "Nothing to roll back: the checks only read.",
}


def sample_document(**overrides) -> dict:
    doc = copy.deepcopy(SAMPLE_DOCUMENT)
    doc.update(overrides)
    return doc


def ready_runbook(document: dict | None = None, *, incident=None, version: int = 1) -> Runbook:
    """A ready runbook whose artifact is really stored, as runbook_generate leaves it."""
    incident = incident or IncidentFactory()
    document = document or sample_document()
    key, digest = artifact_store(incident_id=incident.pk, version=version, data=document)
    return Runbook.objects.create(
        incident=incident,
        version=version,
        status=RunbookStatus.READY,
        author=RunbookAuthor.OFFLINE,
        artifact=document,
        artifact_key=key,
        artifact_sha256=digest,
        generated_at=timezone.now(),
    )
