"""The one way to append to an incident's timeline. Called from services only."""

from typing import Any

from .choices import TimelineKind
from .models import Incident, TimelineEvent


def timeline_event(
    *,
    incident: Incident | int,
    kind: TimelineKind | str,
    message: str,
    actor: Any = None,
    actor_label: str = "",
    payload: dict | None = None,
) -> TimelineEvent:
    """An unsaved event; timeline_record saves one, timeline_record_many several at once."""
    incident_id = incident if isinstance(incident, int) else incident.pk
    user = actor if getattr(actor, "is_authenticated", False) else None
    return TimelineEvent(
        incident_id=incident_id,
        kind=kind,
        actor=user,
        actor_label=actor_label or ("" if user else "system"),
        message=message[:4000],
        payload=payload or {},
    )


def timeline_record_many(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Append events made by timeline_event in one INSERT (a batch touching many incidents)."""
    return TimelineEvent.objects.bulk_create(events) if events else []


def timeline_record(
    *,
    incident: Incident | int,
    kind: TimelineKind | str,
    message: str,
    actor: Any = None,
    actor_label: str = "",
    payload: dict | None = None,
) -> TimelineEvent:
    event = timeline_event(
        incident=incident,
        kind=kind,
        message=message,
        actor=actor,
        actor_label=actor_label,
        payload=payload,
    )
    event.save()
    return event
