"""Reading the evidence: the latest set of an incident, as plain dicts for planners and pages."""

from typing import Any

from django.db import connection
from django.db.models.functions import JSONObject

from incidents.models import Alert

from .collectors import ALERTS_SHOWN
from .models import Evidence, EvidenceSet


def own_alert_texts(incident_id_ref: Any) -> Any:
    """The incident's latest alerts' titles and labels as an annotation (PostgreSQL: one
    array per row), so the stage that reads the incident reads them too and the similar
    collector need not; None where the database has no arrays."""
    if connection.vendor != "postgresql":
        return None
    from django.contrib.postgres.expressions import ArraySubquery

    return ArraySubquery(
        Alert.objects.filter(incident_id=incident_id_ref)
        .order_by("-last_seen", "-id")
        .values(pair=JSONObject(title="title", labels="labels"))[:ALERTS_SHOWN]
    )


def own_alerts_of(annotated: list[dict] | None) -> list[tuple[str, dict]] | None:
    """What `own_alert_texts` read, as the collectors' Scope takes it."""
    if annotated is None:
        return None
    return [(a.get("title") or "", a.get("labels") or {}) for a in annotated]


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
