"""Reading the evidence: the latest set of an incident, as plain dicts for planners and pages."""

from typing import Any

from .models import Evidence, EvidenceSet


def latest_set(incident_id: int) -> EvidenceSet | None:
    return (
        EvidenceSet.objects.filter(incident_id=incident_id).order_by("-created_at", "-id").first()
    )


def evidence_item(e: Evidence) -> dict[str, Any]:
    """One item as planners and pages read it."""
    return {
        "key": e.key,
        "collector": e.collector,
        "status": e.status,
        "summary": e.summary,
        "query": e.query,
        "data": e.data,
    }


def evidence_items(evidence_set: EvidenceSet | None) -> list[dict[str, Any]]:
    if evidence_set is None:
        return []
    return [
        evidence_item(e) for e in Evidence.objects.filter(evidence_set=evidence_set).order_by("id")
    ]


def latest_evidence(incident_id: int) -> list[dict[str, Any]]:
    return evidence_items(latest_set(incident_id))
