"""Severity and status vocabularies, with the one table of allowed transitions."""

from dataclasses import dataclass

from django.db import models


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1 – critical"
    SEV2 = "SEV2", "SEV2 – major"
    SEV3 = "SEV3", "SEV3 – minor"
    SEV4 = "SEV4", "SEV4 – low"


@dataclass(frozen=True)
class SeverityPolicy:
    impact: str
    update_every_minutes: int
    response: str


SEVERITY_POLICY: dict[str, SeverityPolicy] = {
    Severity.SEV1: SeverityPolicy(
        "Complete outage or data loss for many customers", 15, "All hands, page now"
    ),
    Severity.SEV2: SeverityPolicy(
        "Major feature broken or badly degraded", 30, "Page the on-call, open a channel"
    ),
    Severity.SEV3: SeverityPolicy(
        "Minor feature broken, a workaround exists", 120, "On-call during working hours"
    ),
    Severity.SEV4: SeverityPolicy(
        "Minimal impact, cosmetic or internal", 24 * 60, "Track it, daily updates"
    ),
}


class IncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


# The only moves a status may make. Reopening goes back to investigating.
INCIDENT_TRANSITIONS: dict[str, frozenset[str]] = {
    IncidentStatus.INVESTIGATING: frozenset(
        {IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING, IncidentStatus.RESOLVED}
    ),
    IncidentStatus.IDENTIFIED: frozenset(
        {IncidentStatus.INVESTIGATING, IncidentStatus.MONITORING, IncidentStatus.RESOLVED}
    ),
    IncidentStatus.MONITORING: frozenset(
        {IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.RESOLVED}
    ),
    IncidentStatus.RESOLVED: frozenset({IncidentStatus.INVESTIGATING}),
}


class TimelineKind(models.TextChoices):
    DECLARED = "declared", "Declared"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    STATUS_CHANGED = "status_changed", "Status changed"
    SEVERITY_CHANGED = "severity_changed", "Severity changed"
    NOTE = "note", "Note"
    RUNBOOK_QUEUED = "runbook_queued", "Runbook queued"
    RUNBOOK_READY = "runbook_ready", "Runbook ready"
    RUNBOOK_INVALID = "runbook_invalid", "Runbook invalid"
    RUNBOOK_FAILED = "runbook_failed", "Runbook failed"
    GENERATION_FALLBACK = "generation_fallback", "Fell back to offline planner"
    CHECKS_STARTED = "checks_started", "Checks started"
    CHECKS_DONE = "checks_done", "Checks done"
    EXECUTION_REFUSED = "execution_refused", "Execution refused"
    ACTION_PROPOSED = "action_proposed", "Action proposed"
    ACTION_STATUS = "action_status", "Action status"
    APPROVAL = "approval", "Approval decision"
    NOTIFICATION = "notification", "Notification"
    ROLE_ASSIGNED = "role_assigned", "Role assigned"
    STATUS_UPDATE = "status_update", "Status update"
    ALERT_RECEIVED = "alert_received", "Alert received"
    ALERTS_CLEARED = "alerts_cleared", "Alerts cleared"


class AlertSourceKind(models.TextChoices):
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager (webhook v4)"
    PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
    DATADOG = "datadog", "Datadog webhook"
    GENERIC = "generic", "Generic JSON"


class AlertAuthMode(models.TextChoices):
    BEARER = "bearer", "Bearer token (Authorization header)"
    HMAC = "hmac", "HMAC-SHA256 signature of the body"


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
