"""Our own actions are changes too: a restart, a scale or a rollback that ran is recorded
as a ChangeEvent, so the next diagnosis sees it beside the deploys from the webhooks."""

from typing import Any

from django.utils import timezone

from incidents.choices import ChangeKind, ChangeStatus
from incidents.ingest.changes import ParsedChange, change_record

from .models import ActionRequest

ACTION_CHANGE_KINDS = {
    "service.restart": ChangeKind.RESTART,
    "service.scale": ChangeKind.SCALE,
    "deploy.rollback": ChangeKind.ROLLBACK,
}


def record_action_change(request: ActionRequest, *, succeeded: bool) -> Any:
    """Record a finished state-changing action as a change of the incident's service."""
    kind = ACTION_CHANGE_KINDS.get(request.action)
    if kind is None:
        return None
    params = request.params or {}
    version = ""
    if kind == ChangeKind.ROLLBACK:
        version = str(params.get("image") or "")
    elif kind == ChangeKind.SCALE:
        version = f"count={params.get('count')}"
    service = request.incident.service or request.target or "unknown"
    return change_record(
        origin="executor",
        change=ParsedChange(
            service=service,
            kind=kind,
            status=ChangeStatus.SUCCEEDED if succeeded else ChangeStatus.FAILED,
            external_id=f"action:{request.pk}",
            version=version,
            author="incident response executor",
            description=f"{request.action} on {request.target or 'its target'} "
            f"for incident #{request.incident_id}",
            started_at=request.started_at or timezone.now(),
            finished_at=timezone.now(),
        ),
    )
