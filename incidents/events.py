"""The one way to append to an incident's timeline. Called from services only."""

from typing import Any

from .choices import TimelineKind
from .models import Incident, TimelineEvent


def timeline_record(
    *,
    incident: Incident | int,
    kind: TimelineKind | str,
    message: str,
    actor: Any = None,
    actor_label: str = "",
    payload: dict | None = None,
) -> TimelineEvent:
    incident_id = incident if isinstance(incident, int) else incident.pk
    user = actor if getattr(actor, "is_authenticated", False) else None
    return TimelineEvent.objects.create(
        incident_id=incident_id,
        kind=kind,
        actor=user,
        actor_label=actor_label or ("" if user else "system"),
        message=message[:4000],
        payload=payload or {},
    )
