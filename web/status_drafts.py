"""Drafts of the three status-update templates, filled from the incident's current facts.

A draft reads every stage (the runbook's diagnosis, the actions that succeeded), so it
lives with the pages rather than in the incidents app, which sits below those stages.
"""

from typing import Any

from django.utils import timezone

from executor.choices import ActionStatus
from incidents.choices import ROLE_FIELDS, IncidentStatus, severity_info
from incidents.models import Incident, StatusUpdate
from incidents.services import IncidentError


def _ago(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def status_update_draft(
    *, incident: Incident, audience: str, facts: tuple[Any, list[str]] | None = None
) -> str:
    """A first draft for one of the three templates, filled from the incident's current facts.

    Only a draft: the responder edits it, and posting it records it on the timeline.
    The customer notice leaves out names, hypotheses and internal systems on purpose.
    """

    if audience not in StatusUpdate.Audience.values:
        raise IncidentError(
            f"Unknown template {audience!r}; use one of {', '.join(StatusUpdate.Audience.values)}."
        )
    if facts is None:
        incident = Incident.objects.select_related(*ROLE_FIELDS).get(pk=incident.pk)
        runbook = incident.runbooks.filter(artifact__isnull=False).order_by("-version").first()
        done = list(
            incident.action_requests.filter(status=ActionStatus.SUCCEEDED)
            .order_by("finished_at")
            .values_list("step_id", flat=True)
        )
    else:
        # The page has just read all of it (incident with roles, runbook, actions).
        runbook, done = facts
    now = timezone.now()
    policy = severity_info(incident.severity)
    doc = (runbook.artifact if runbook else None) or {}
    status_label = incident.get_status_display().lower()
    duration = _ago((incident.resolved_at or now) - incident.detected_at)
    next_update = (
        ""
        if incident.status == IncidentStatus.RESOLVED
        else (
            f"Next update within {policy.update_every_minutes} minutes."
            if policy.update_every_minutes < 120
            else f"Next update within {policy.update_every_minutes // 60} hours."
        )
    )
    service = incident.service or "the affected service"

    if audience == StatusUpdate.Audience.CUSTOMER:
        plain = {
            IncidentStatus.INVESTIGATING: "We are investigating reports of a problem",
            IncidentStatus.IDENTIFIED: "We have identified the cause of a problem",
            IncidentStatus.MONITORING: "A fix is in place and we are monitoring the results for a problem",
            IncidentStatus.RESOLVED: "This incident has been resolved. We had a problem",
        }[incident.status]
        lines = [
            f"{plain} affecting {service}.",
            f"Started: {incident.detected_at:%Y-%m-%d %H:%M} UTC.",
        ]
        if incident.status == IncidentStatus.RESOLVED and incident.resolved_at:
            lines.append(f"Resolved: {incident.resolved_at:%Y-%m-%d %H:%M} UTC.")
        lines.append("We apologise for the inconvenience.")
        if next_update:
            lines.append(next_update)
        return "\n".join(lines)

    def who(user: Any) -> str:
        return user.get_username() if user else "unassigned"

    if audience == StatusUpdate.Audience.EXECUTIVE:
        lines = [
            f"{incident.severity} incident on {service}: {incident.title}",
            f"Status: {status_label}, for {duration}. Impact class: {policy.impact}.",
            f"Incident commander: {who(incident.commander)}.",
        ]
        if doc:
            lines.append(
                f"Working theory: {doc.get('incident_type', '?')} on "
                f"{doc.get('affected_system', '?')} "
                f"(confidence {float(doc.get('confidence', 0)):.0%})."
            )
        lines.append(f"Actions completed: {', '.join(done) if done else 'none yet'}.")
        if next_update:
            lines.append(next_update)
        return "\n".join(lines)

    # Internal update: everything a responder joining now needs.
    lines = [
        f"[{incident.severity}] {incident.title}",
        f"Status: {status_label} · service: {service} · open for {duration}",
        f"IC: {who(incident.commander)} · comms: {who(incident.comms_lead)} · "
        f"tech: {who(incident.tech_lead)} · scribe: {who(incident.scribe)}",
    ]
    if doc:
        lines.append(
            f"Runbook v{runbook.version}: {doc.get('incident_type', '?')} on "
            f"{doc.get('affected_system', '?')}, confidence {float(doc.get('confidence', 0)):.0%}"
        )
        lines.extend(f"- hypothesis: {h}" for h in doc.get("hypotheses", [])[:3])
    lines.append(f"Done: {', '.join(done) if done else 'no actions run yet'}")
    lines.append("Next: ")
    if next_update:
        lines.append(next_update)
    return "\n".join(lines)
