"""Verbs that change incidents. Views, admin, tasks and commands call these."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from .choices import INCIDENT_TRANSITIONS, IncidentStatus, Severity, TimelineKind
from .events import timeline_record
from .models import Incident


class IncidentError(Exception):
    """A change the rules refuse; the message is meant for the person who asked."""


def _title_from(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return (first[:197] + "...") if len(first) > 200 else first


def incident_declare(
    *,
    description: str,
    title: str = "",
    severity: str = Severity.SEV3,
    service: str = "",
    actor: Any = None,
    generate_runbook: bool = True,
) -> Incident:
    description = (description or "").strip()
    title = (title or "").strip() or _title_from(description)
    if not title:
        raise IncidentError("Say what is broken: a title or a description is required.")
    if severity not in Severity.values:
        raise IncidentError(
            f"Unknown severity {severity!r}; use one of {', '.join(Severity.values)}."
        )
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title[:200],
            description=description,
            severity=severity,
            service=(service or "").strip()[:100],
            detected_at=timezone.now(),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        timeline_record(
            incident=incident,
            kind=TimelineKind.DECLARED,
            actor=actor,
            message=f"Declared {severity}: {incident.title}",
            payload={"severity": severity, "service": incident.service},
        )
        if generate_runbook:
            from runbooks.services import runbook_request

            runbook_request(incident=incident, actor=actor)
    return incident


def incident_transition(*, incident: Incident, to_status: str, actor: Any = None) -> Incident:
    """Move an incident's status along the table, refusing anything else."""
    if to_status not in IncidentStatus.values:
        raise IncidentError(f"Unknown status {to_status!r}.")
    with transaction.atomic():
        current = Incident.objects.select_for_update().get(pk=incident.pk)
        if to_status not in INCIDENT_TRANSITIONS[current.status]:
            raise IncidentError(f"An incident that is {current.status} cannot move to {to_status}.")
        now = timezone.now()
        fields: dict[str, Any] = {"status": to_status, "updated_at": now}
        if to_status == IncidentStatus.RESOLVED:
            fields["resolved_at"] = now
        elif current.status == IncidentStatus.RESOLVED:
            fields["resolved_at"] = None
        if current.acknowledged_at is None:
            fields["acknowledged_at"] = now
        # Conditional: a concurrent move in between makes this one a no-op.
        updated = Incident.objects.filter(pk=current.pk, status=current.status).update(**fields)
        if not updated:
            raise IncidentError("The incident changed meanwhile; reload and try again.")
        timeline_record(
            incident=current,
            kind=TimelineKind.STATUS_CHANGED,
            actor=actor,
            message=f"Status {current.status} → {to_status}",
            payload={"from": current.status, "to": to_status},
        )
    incident.refresh_from_db()
    return incident


def incident_acknowledge(*, incident: Incident, actor: Any = None) -> Incident:
    with transaction.atomic():
        updated = Incident.objects.filter(pk=incident.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now()
        )
        if updated:
            timeline_record(
                incident=incident,
                kind=TimelineKind.ACKNOWLEDGED,
                actor=actor,
                message="Acknowledged",
            )
    incident.refresh_from_db()
    return incident


def incident_set_severity(*, incident: Incident, severity: str, actor: Any = None) -> Incident:
    if severity not in Severity.values:
        raise IncidentError(f"Unknown severity {severity!r}.")
    with transaction.atomic():
        current = Incident.objects.select_for_update().get(pk=incident.pk)
        if current.severity != severity:
            Incident.objects.filter(pk=current.pk).update(severity=severity)
            timeline_record(
                incident=current,
                kind=TimelineKind.SEVERITY_CHANGED,
                actor=actor,
                message=f"Severity {current.severity} → {severity}",
                payload={"from": current.severity, "to": severity},
            )
    incident.refresh_from_db()
    return incident


def incident_add_note(*, incident: Incident, text: str, actor: Any = None) -> None:
    text = (text or "").strip()
    if not text:
        raise IncidentError("A note needs some text.")
    timeline_record(incident=incident, kind=TimelineKind.NOTE, actor=actor, message=text)
