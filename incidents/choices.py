"""Severity and status vocabularies, with the one table of allowed transitions."""

from dataclasses import dataclass

from django.db import models


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1 – critical"
    SEV2 = "SEV2", "SEV2 – major"
    SEV3 = "SEV3", "SEV3 – minor"
    SEV4 = "SEV4", "SEV4 – low"


@dataclass(frozen=True)
class SeverityInfo:
    """Everything the product says about one severity; settings may override the TTL."""

    label: str
    colour: str  # the badge colour, in the web UI and the admin alike
    update_every_minutes: int  # the status update cadence
    approval_ttl_minutes: int  # how long an approval request waits for a decision
    # Destructive actions here need APPROVALS_REQUIRED_DESTRUCTIVE distinct approvers.
    multiple_approvers: bool
    pages: bool  # pages the on-call and opens a war room
    impact: str
    response: str

    @property
    def cadence(self) -> str:
        """The update cadence in words: 'every 15 min', 'every 60 min', 'daily'."""
        minutes = self.update_every_minutes
        if minutes < 120:
            return f"every {minutes} min"
        if minutes == 24 * 60:
            return "daily"
        return f"every {minutes // 60} h"


# The one severity table: label, colour, cadence, approval TTL, approvers, paging.
# Update cadence is the Incident Commander policy: SEV1 15 min, SEV2 30, SEV3 60, SEV4 daily.
SEVERITIES: dict[str, SeverityInfo] = {
    Severity.SEV1: SeverityInfo(
        label=Severity.SEV1.label,
        colour="#b42318",
        update_every_minutes=15,
        approval_ttl_minutes=15,
        multiple_approvers=True,
        pages=True,
        impact="Complete outage or data loss for many customers",
        response="All hands, page now",
    ),
    Severity.SEV2: SeverityInfo(
        label=Severity.SEV2.label,
        colour="#d4540b",
        update_every_minutes=30,
        approval_ttl_minutes=60,
        multiple_approvers=True,
        pages=True,
        impact="Major feature broken or badly degraded",
        response="Page the on-call, open a channel",
    ),
    Severity.SEV3: SeverityInfo(
        label=Severity.SEV3.label,
        colour="#b88700",
        update_every_minutes=60,
        approval_ttl_minutes=240,
        multiple_approvers=False,
        pages=False,
        impact="Minor feature broken, a workaround exists",
        response="On-call during working hours",
    ),
    Severity.SEV4: SeverityInfo(
        label=Severity.SEV4.label,
        colour="#5d6675",
        update_every_minutes=24 * 60,
        approval_ttl_minutes=24 * 60,
        multiple_approvers=False,
        pages=False,
        impact="Minimal impact, cosmetic or internal",
        response="Track it",
    ),
}


def severity_info(severity: str) -> SeverityInfo:
    """The table's row for `severity`; an unknown one is treated as SEV3."""
    return SEVERITIES.get(severity) or SEVERITIES[Severity.SEV3]


class IncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


# The only moves a status may make (applied by incidents.transitions.transition).
# Reopening goes back to investigating.
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
    POSTMORTEM = "postmortem", "Postmortem"
    FOLLOW_UP = "follow_up", "Follow-up"
    STATUS_EDITED = "status_edited", "Status update edited"
    STATUS_PUBLISHED = "status_published", "Status update published"
    WAR_ROOM = "war_room", "War room"
    SLACK_UNDELIVERED = "slack_undelivered", "Not posted to Slack"
    SLACK_USERS_UNKNOWN = "slack_users_unknown", "Not found in Slack"
    UPDATE_NUDGED = "update_nudged", "Status update overdue"
    STAKEHOLDERS_EMAILED = "stakeholders_emailed", "Stakeholders emailed"


class AlertSourceKind(models.TextChoices):
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager (webhook v4)"
    PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
    DATADOG = "datadog", "Datadog webhook"
    GENERIC = "generic", "Generic JSON"
    # Change sources: their deliveries record ChangeEvents, not alerts.
    GITHUB = "github", "GitHub deployment_status / workflow_run (changes)"
    CHANGE = "change", "Generic change JSON (changes)"


CHANGE_SOURCE_KINDS = frozenset({AlertSourceKind.GITHUB, AlertSourceKind.CHANGE})


class ChangeKind(models.TextChoices):
    DEPLOY = "deploy", "Deploy"
    CONFIG = "config", "Config change"
    FEATURE_FLAG = "feature_flag", "Feature flag"
    SCALE = "scale", "Scale"
    ROLLBACK = "rollback", "Rollback"
    RESTART = "restart", "Restart"
    OTHER = "other", "Other"


class ChangeStatus(models.TextChoices):
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AlertAuthMode(models.TextChoices):
    BEARER = "bearer", "Bearer token (Authorization header)"
    HMAC = "hmac", "HMAC-SHA256 signature of the body"


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


# The incident roles: the Incident field of each, and how the timeline names it.
ROLE_FIELDS: dict[str, str] = {
    "commander": "incident commander",
    "comms_lead": "communications lead",
    "tech_lead": "technical lead",
    "scribe": "scribe",
}
