"""Verbs that change incidents. Views, admin, tasks and commands call these."""

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .choices import INCIDENT_TRANSITIONS, ROLE_FIELDS, IncidentStatus, Severity
from .events import (
    acknowledged_event,
    incident_declared_event,
    note_added_event,
    role_assigned_event,
    severity_changed_event,
    status_changed_event,
    status_update_edited_event,
    status_update_posted_event,
    status_update_published_event,
    timeline_batch,
    written_with_events,
)
from .models import Incident, StatusUpdate
from .signals import announce, incident_declared, incident_resolved
from .storable import clean_text
from .together import reserve_ids
from .transitions import IllegalTransition, transition


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
    # From a form, a chat command or a script: nothing PostgreSQL would refuse.
    description = clean_text(description or "").strip()
    title = clean_text(title or "").strip() or _title_from(description)
    if not title:
        raise IncidentError("Say what is broken: a title or a description is required.")
    if severity not in Severity.values:
        raise IncidentError(
            f"Unknown severity {severity!r}; use one of {', '.join(Severity.values)}."
        )
    incident = Incident(
        title=title[:200],
        description=description,
        severity=severity,
        service=(service or "").strip()[:100],
        detected_at=timezone.now(),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )

    def declared() -> None:
        incident_declared_event(
            incident=incident, actor=actor, severity=severity, service=incident.service
        )
        if generate_runbook:
            announce(incident_declared, incident=incident, actor=actor)

    if connection.vendor == "postgresql":
        # One statement: the incident, its events and what the hand-off adds (the first
        # runbook version), with the ids they name one another by reserved first.
        reserve_ids([incident])
        written_with_events([[incident]], declared)
        return incident
    # The declaration's events (declared, and the first runbook queued) in one INSERT.
    with transaction.atomic(), timeline_batch():
        incident.save(force_insert=True)
        declared()
    return incident


def incident_transition(*, incident: Incident, to_status: str, actor: Any = None) -> Incident:
    """Move an incident's status along the table, refusing anything else."""
    if to_status not in IncidentStatus.values:
        raise IncidentError(f"Unknown status {to_status!r}.")
    with transaction.atomic():
        current = Incident.objects.select_for_update().get(pk=incident.pk)
        now = timezone.now()
        fields: dict[str, Any] = {"updated_at": now}
        if to_status == IncidentStatus.RESOLVED:
            fields["resolved_at"] = now
        elif current.status == IncidentStatus.RESOLVED:
            fields["resolved_at"] = None
        try:
            moved = transition(
                Incident,
                pk=current.pk,
                table=INCIDENT_TRANSITIONS,
                from_status=current.status,
                to_status=to_status,
                **fields,
            )
        except IllegalTransition as exc:
            raise IncidentError(
                f"An incident that is {current.status} cannot move to {to_status}."
            ) from exc
        if not moved:
            raise IncidentError("The incident changed meanwhile; reload and try again.")
        status_changed_event(
            incident=current, actor=actor, from_status=current.status, to_status=to_status
        )
        # A person moving it has seen it; the system clearing alerts (no actor) has not.
        if current.acknowledged_at is None and getattr(actor, "is_authenticated", False):
            incident_acknowledge(incident=current, actor=actor)
        if to_status == IncidentStatus.RESOLVED:
            announce(incident_resolved, incident_id=current.pk, actor=actor)
    incident.refresh_from_db()
    return incident


def incident_acknowledge(*, incident: Incident, actor: Any = None) -> Incident:
    with transaction.atomic():
        updated = Incident.objects.filter(pk=incident.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now()
        )
        if updated:
            acknowledged_event(incident=incident, actor=actor)
    incident.refresh_from_db()
    return incident


def incident_set_severity(*, incident: Incident, severity: str, actor: Any = None) -> Incident:
    if severity not in Severity.values:
        raise IncidentError(f"Unknown severity {severity!r}.")
    with transaction.atomic():
        current = Incident.objects.select_for_update().get(pk=incident.pk)
        if current.severity != severity:
            Incident.objects.filter(pk=current.pk).update(severity=severity)
            severity_changed_event(
                incident=current, actor=actor, from_severity=current.severity, to_severity=severity
            )
    incident.refresh_from_db()
    return incident


def incident_add_note(*, incident: Incident, text: str, actor: Any = None) -> None:
    text = clean_text(text or "").strip()
    if not text:
        raise IncidentError("A note needs some text.")
    note_added_event(incident=incident, actor=actor, text=text)


# --- roles and status updates ---------------------------------------------------


def incident_assign_role(
    *, incident: Incident, role: str, user: Any = None, actor: Any = None
) -> Incident:
    """Give a role to a user (or take it away with user=None); a no-op when nothing changes."""
    if role not in ROLE_FIELDS:
        raise IncidentError(f"Unknown role {role!r}; use one of {', '.join(ROLE_FIELDS)}.")
    if user is not None and not getattr(user, "is_active", False):
        raise IncidentError("Only an active user can take a role.")
    label = ROLE_FIELDS[role]
    with transaction.atomic():
        current = (
            Incident.objects.select_for_update(of=("self",))
            .select_related(role)
            .get(pk=incident.pk)
        )
        before = getattr(current, role)
        if (before.pk if before else None) == (user.pk if user else None):
            incident.refresh_from_db()
            return incident
        Incident.objects.filter(pk=current.pk).update(
            **{f"{role}_id": user.pk if user else None, "updated_at": timezone.now()}
        )
        name = user.get_username() if user else None
        role_assigned_event(
            incident=current,
            actor=actor,
            role=role,
            role_label=label,
            user_id=user.pk if user else None,
            user_name=name,
            previous_user_id=before.pk if before else None,
        )
    incident.refresh_from_db()
    return incident


def status_update_post(*, incident: Incident, audience: str, body: str, actor: Any = None):
    """Save a status update and put it on the timeline. Nothing is sent anywhere."""
    body = clean_text(body or "").strip()
    if audience not in StatusUpdate.Audience.values:
        raise IncidentError(
            f"Unknown template {audience!r}; use one of {', '.join(StatusUpdate.Audience.values)}."
        )
    if not body:
        raise IncidentError("A status update needs some text.")
    with transaction.atomic():
        update = StatusUpdate.objects.create(
            incident=incident,
            audience=audience,
            body=body,
            author=actor if getattr(actor, "is_authenticated", False) else None,
            published_at=None if audience == StatusUpdate.Audience.CUSTOMER else timezone.now(),
        )
        label = update.get_audience_display()
        status_update_posted_event(
            incident=incident,
            actor=actor,
            status_update_id=update.pk,
            audience=audience,
            audience_label=label,
            body=body,
        )
    return update


PUBLISH_PERMISSION = "incidents.publish_status"


def status_update_edit(*, update: StatusUpdate, body: str, actor: Any = None) -> StatusUpdate:
    """Change a draft customer notice's text; a published one stays as it was read."""
    body = clean_text(body or "").strip()
    if not body:
        raise IncidentError("A status update needs some text.")
    with transaction.atomic():
        changed = StatusUpdate.objects.filter(pk=update.pk, published_at__isnull=True).update(
            body=body
        )
        if not changed:
            raise IncidentError("This update is published already; write a new one.")
        status_update_edited_event(
            incident=update.incident_id, actor=actor, status_update_id=update.pk, body=body
        )
    update.refresh_from_db()
    return update


def status_update_publish(*, update: StatusUpdate, actor: Any) -> StatusUpdate:
    """Publish a draft customer notice to the status page: only with publish_status."""
    if not (getattr(actor, "is_authenticated", False) and actor.has_perm(PUBLISH_PERMISSION)):
        raise IncidentError("Publishing to the status page needs the publish_status permission.")
    with transaction.atomic():
        changed = StatusUpdate.objects.filter(
            pk=update.pk, published_at__isnull=True, audience=StatusUpdate.Audience.CUSTOMER
        ).update(published_at=timezone.now(), published_by=actor)
        if not changed:
            raise IncidentError("Only a draft customer notice can be published.")
        update.refresh_from_db()
        status_update_published_event(
            incident=update.incident_id,
            actor=actor,
            status_update_id=update.pk,
            publisher=actor.get_username(),
            body=update.body,
        )
    return update


OUTCOME_TEXT_MAX = 4000


def incident_outcome_record(
    *,
    incident_id: int,
    root_cause: str,
    category: str = "",
    actions: list[str] | None = None,
    source: str = "",
) -> None:
    """Keep what resolved an incident on it (from its published postmortem), so the next
    similar incident shows it. Replaces any earlier outcome; the publish that calls this
    is on the timeline already."""
    outcome = {
        "root_cause": (root_cause or "")[:OUTCOME_TEXT_MAX],
        "category": (category or "")[:64],
        "actions": [str(a)[:300] for a in (actions or [])][:10],
        "source": source[:100],
        "recorded_at": timezone.now().isoformat(),
    }
    Incident.objects.filter(pk=incident_id).update(outcome=outcome, updated_at=timezone.now())
