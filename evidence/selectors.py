"""Reading the evidence: the latest set of an incident, as plain dicts for planners and pages."""

import json
from typing import Any

from incidents.nested import JSONRows, rows

from .collectors import latest_alerts
from .models import Evidence, EvidenceSet


def own_alert_texts(incident_id_ref: Any) -> JSONRows:
    """The incident's latest alerts' titles and labels as an annotation, so the stage that
    reads the incident reads them too and the similar collector need not;
    `own_alerts_of` decodes it."""
    return JSONRows(latest_alerts(incident_id_ref), "id", "title", "labels")


def own_alerts_of(value: str | None) -> list[tuple[str, dict]]:
    """What `own_alert_texts` read, as the collectors' Scope takes it."""
    out = []
    for _, title, labels in rows(value):
        if isinstance(labels, str):  # SQLite nests the JSON column as its text
            labels = json.loads(labels or "{}")
        out.append((title or "", labels if isinstance(labels, dict) else {}))
    return out


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
