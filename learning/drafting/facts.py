"""What the draft is written from: the incident's own data, gathered in a few queries.

Both writers (Claude and offline) read the same facts, and the stored postmortem
keeps them, so every figure on the page can be traced back to a row.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min

from executor.choices import ActionStatus
from executor.models import ActionRequest
from incidents import metrics
from incidents.choices import IncidentStatus, TimelineKind
from incidents.event_text import event_text
from incidents.models import Incident, StatusUpdate
from runbooks.choices import RunbookStatus

# Moments a reader looks for first; everything else is context.
KEY_KINDS = {
    TimelineKind.DECLARED,
    TimelineKind.ACKNOWLEDGED,
    TimelineKind.STATUS_CHANGED,
    TimelineKind.SEVERITY_CHANGED,
    TimelineKind.APPROVAL,
}


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 1)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def humanize(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes:02d} min"


def _key(event: Any) -> bool:
    if event.kind == TimelineKind.ACTION_STATUS:
        return (event.payload or {}).get("change") == "finished"
    if event.kind == TimelineKind.RUNBOOK_READY:
        return True
    return event.kind in KEY_KINDS


def gather(incident: Incident) -> dict:
    """The facts of one incident as plain JSON values."""
    events = list(incident.timeline.select_related("actor").order_by("created_at", "id"))
    alerts = list(incident.alerts.order_by("first_seen").values("title", "service", "starts_at"))
    updates = list(
        StatusUpdate.objects.filter(incident=incident)
        .order_by("created_at", "id")
        .values("audience", "body", "created_at")
    )
    runbook = (
        incident.runbooks.filter(status=RunbookStatus.READY, artifact__isnull=False)
        .order_by("-version")
        .first()
    )
    actions = list(
        ActionRequest.objects.filter(incident=incident)
        .order_by("created_at", "id")
        .values("step_id", "action", "status", "plan", "error", "result")
    )
    first_alert = incident.alerts.aggregate(start=Min("starts_at"))["start"]
    mitigated = next(
        (
            e.created_at
            for e in events
            if e.kind == TimelineKind.STATUS_CHANGED
            and (e.payload or {}).get("to") in (IncidentStatus.MONITORING, IncidentStatus.RESOLVED)
        ),
        None,
    )
    ttd = max(incident.detected_at - first_alert, timedelta(0)) if first_alert else None
    ttm = max(mitigated - incident.detected_at, timedelta(0)) if mitigated else None
    people = {incident.created_by, incident.commander, incident.comms_lead}
    people |= {incident.tech_lead, incident.scribe} | {e.actor for e in events}
    names: set[str] = set()
    for person in people:
        if person is not None:
            names |= {person.get_username(), person.first_name, person.last_name}
    document = runbook.artifact if runbook else {}
    return {
        "incident": {
            "id": incident.pk,
            "title": incident.title,
            "description": incident.description,
            "severity": incident.severity,
            "service": incident.service,
            "status": incident.status,
        },
        "times": {
            "started_at": _iso(first_alert),
            "detected_at": _iso(incident.detected_at),
            "acknowledged_at": _iso(incident.acknowledged_at),
            "mitigated_at": _iso(mitigated),
            "resolved_at": _iso(incident.resolved_at),
            "time_to_detect_s": _seconds(ttd),
            "time_to_acknowledge_s": _seconds(metrics.time_to_acknowledge(incident)),
            "time_to_mitigate_s": _seconds(ttm),
            "time_to_resolve_s": _seconds(metrics.time_to_resolve(incident)),
        },
        "services": sorted({s for s in [incident.service, *(a["service"] for a in alerts)] if s}),
        "alerts": [a["title"] for a in alerts],
        "customer_facing": any(u["audience"] == StatusUpdate.Audience.CUSTOMER for u in updates),
        "customer_updates": [
            {"at": _iso(u["created_at"]), "body": u["body"]}
            for u in updates
            if u["audience"] == StatusUpdate.Audience.CUSTOMER
        ],
        "timeline": [
            {
                "at": _iso(e.created_at),
                "who": e.who,
                "kind": e.kind,
                "text": event_text(e),
                "key": _key(e),
            }
            for e in events
        ],
        "diagnosis": {
            "incident_type": document.get("incident_type", ""),
            "affected_system": document.get("affected_system", ""),
            "confidence": document.get("confidence"),
            "hypotheses": list(document.get("hypotheses", [])),
            "runbook_version": runbook.version if runbook else None,
        },
        "actions": [
            {
                "step_id": a["step_id"],
                "action": a["action"],
                "status": a["status"],
                "summary": ((a["result"] or {}).get("summary") or a["error"] or a["plan"])[:300],
            }
            for a in actions
        ],
        "resolving_actions": [
            f"{a['step_id']} ({a['action']})"
            for a in actions
            if a["status"] == ActionStatus.SUCCEEDED
        ],
        "people": sorted(n for n in names if n),
    }
