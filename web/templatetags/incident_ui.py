"""Display helpers for the ops UI: badge colours and labels live here, not on models."""

import json
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from executor.choices import ActionStatus, CheckOutcome, Safety
from executor.policy import approval_reason
from executor.registry import REGISTRY
from incidents import metrics
from incidents.cadence import update_overdue_minutes
from incidents.choices import (
    INCIDENT_TRANSITIONS,
    SEVERITIES,
    IncidentStatus,
    Severity,
    SeverityInfo,
)
from incidents.event_text import event_text
from runbooks.choices import RunbookStatus

register = template.Library()

_STATUS_CLASS = {
    IncidentStatus.INVESTIGATING: "st-investigating",
    IncidentStatus.IDENTIFIED: "st-identified",
    IncidentStatus.MONITORING: "st-monitoring",
    IncidentStatus.RESOLVED: "st-resolved",
}
_RUNBOOK_CLASS = {
    RunbookStatus.QUEUED: "b-busy",
    RunbookStatus.GENERATING: "b-busy",
    RunbookStatus.READY: "b-ok",
    RunbookStatus.INVALID: "b-bad",
    RunbookStatus.FAILED: "b-bad",
}
_OUTCOME_CLASS = {
    CheckOutcome.OK: "b-ok",
    CheckOutcome.WARN: "b-warn",
    CheckOutcome.BLOCKED: "b-muted",
    CheckOutcome.ERROR: "b-bad",
    CheckOutcome.TIMEOUT: "b-bad",
}
_ACTION_STATUS_CLASS = {
    ActionStatus.PROPOSED: "b-muted",
    ActionStatus.AWAITING_APPROVAL: "b-warn",
    ActionStatus.APPROVED: "b-busy",
    ActionStatus.RUNNING: "b-busy",
    ActionStatus.SUCCEEDED: "b-ok",
    ActionStatus.FAILED: "b-bad",
    ActionStatus.REJECTED: "b-bad",
    ActionStatus.EXPIRED: "b-muted",
    ActionStatus.BLOCKED: "b-bad",
}


@register.filter
def timeline_text(event: Any) -> str:
    """The words of a timeline row, rendered from its kind and payload."""
    return event_text(event)


@register.filter
def severity_class(severity: str) -> str:
    return f"sev-{(severity or '').lower()}"


@register.filter
def status_class(status: str) -> str:
    return _STATUS_CLASS.get(status, "")


@register.filter
def runbook_class(status: str | None) -> str:
    return _RUNBOOK_CLASS.get(status or "", "b-muted")


@register.filter
def outcome_class(outcome: str) -> str:
    return _OUTCOME_CLASS.get(outcome, "b-muted")


@register.filter
def action_status_class(status: str) -> str:
    return _ACTION_STATUS_CLASS.get(status, "b-muted")


@register.filter
def severity_policy(severity: str) -> SeverityInfo | None:
    """The severity table's row: impact, response, cadence, colour."""
    return SEVERITIES.get(severity)


@register.simple_tag
def severity_colour_vars() -> SafeString:
    """The badge colours as CSS variables (--sev1 …), so the stylesheet reads the one table."""
    return format_html_join(
        "", "--{}: {}; ", ((sev.lower(), info.colour) for sev, info in SEVERITIES.items())
    )


@register.simple_tag
def severity_choices() -> list[tuple[str, str]]:
    return list(Severity.choices)


@register.filter
def next_statuses(status: str) -> list[tuple[str, str]]:
    """The moves the transition table allows from `status`, in the lifecycle's order."""
    allowed = INCIDENT_TRANSITIONS.get(status, frozenset())
    return [(value, label) for value, label in IncidentStatus.choices if value in allowed]


@register.simple_tag
def action_safety(action: Any) -> dict[str, str]:
    """SAFE/UNSAFE/BLOCKED from the registry's safety class (never the runbook's word alone)."""
    spec = REGISTRY.get(action.action)
    description = spec.description if spec else ""
    if action.status == ActionStatus.BLOCKED or not action.safety:
        return {
            "label": "BLOCKED",
            "css": "b-bad",
            "reason": action.error or "not in the executor's registry",
            "description": description,
        }
    safety_label = Safety(action.safety).label.lower()
    needs = approval_reason(action.safety, action.runbook_marked_safe)
    if needs:
        return {
            "label": "UNSAFE",
            "css": "b-unsafe",
            "reason": action.approval_reason or needs,
            "description": description,
        }
    return {
        "label": "SAFE",
        "css": "b-safe",
        "reason": f"{safety_label} per the executor's registry",
        "description": description,
    }


def _human(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


@register.filter
def age(moment: datetime | None) -> str:
    """How long ago, short: '42s', '7m', '3h 05m', '2d 4h'."""
    if not moment:
        return ""
    return _human(timezone.now() - moment)


@register.simple_tag
def span(start: datetime | None, end: datetime | None = None) -> str:
    """Time from start to end (or to now when end is not known)."""
    if not start:
        return ""
    return _human((end or timezone.now()) - start)


@register.filter
def ms(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


@register.filter
def percent(value: Any) -> str:
    try:
        return f"{float(value):.0%}"
    except (TypeError, ValueError):
        return "?"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def username(user: Any) -> str:
    return user.get_username() if user else "—"


@register.filter
def time_to_acknowledge(incident: Any) -> str:
    value = metrics.time_to_acknowledge(incident)
    return "" if value is None else _human(value)


@register.filter
def time_to_resolve(incident: Any) -> str:
    value = metrics.time_to_resolve(incident)
    return "" if value is None else _human(value)


@register.filter
def update_overdue(incident: Any) -> int:
    """Minutes the next status update is late by the severity's cadence (0: on time)."""
    return update_overdue_minutes(incident, timezone.now())


@register.simple_tag
def incident_rows(incidents: list) -> SafeString:
    """The list page's table rows, one per incident, under the columns incidents/list.html
    heads.

    Written here rather than in the template: the template language spent several ms on
    a page's 25 rows, the largest part of the list's server time; every value is still
    escaped by format_html.
    """
    now = timezone.now()
    link = reverse("incidents:detail", args=[0]).replace("/0/", "/{}/")
    return format_html_join("\n", "{}", ((_incident_row(i, now, link),) for i in incidents))


def _incident_row(incident: Any, now: datetime, link: str) -> SafeString:
    sev = severity_class(incident.severity)
    late = update_overdue_minutes(incident, now)
    overdue = (
        format_html(
            ' <span class="badge b-bad" data-testid="overdue">update overdue by {} min</span>',
            late,
        )
        if late
        else ""
    )
    if incident.awaiting_approvals:
        state = format_html(
            '<span class="badge b-warn">{} awaiting approval</span>', incident.awaiting_approvals
        )
    elif incident.runbook_status:
        state = format_html(
            '<span class="badge {}">v{} {}</span>',
            runbook_class(incident.runbook_status),
            incident.runbook_version,
            incident.runbook_status,
        )
    else:
        state = mark_safe('<span class="muted">none</span>')
    if incident.failed_checks:
        n = incident.failed_checks
        failing = format_html(
            '<span class="badge b-bad">{} check{} failing</span>', n, "" if n == 1 else "s"
        )
    else:
        failing = ""
    detected = incident.detected_at
    return format_html(
        '<tr class="row {sev}{resolved}">'
        '<td data-label="Severity"><span class="sev {sev}">{severity}</span></td>'
        '<td class="title"><a href="{href}"><span class="muted">#{pk}</span> {title}</a></td>'
        '<td data-label="Status"><span class="badge {status_css}">{status}</span>{overdue}</td>'
        '<td data-label="Service">{service}</td>'
        '<td data-label="Age"><time datetime="{iso}" title="{when} UTC">{age}</time></td>'
        '<td data-label="Commander">{commander}</td>'
        '<td data-label="Runbook" class="row-state">{state} {failing}</td>'
        "</tr>",
        sev=sev,
        resolved=" is-resolved" if incident.status == IncidentStatus.RESOLVED else "",
        severity=incident.severity,
        href=link.format(incident.pk),
        pk=incident.pk,
        title=incident.title,
        status_css=status_class(incident.status),
        status=incident.get_status_display(),
        overdue=overdue,
        service=incident.service or "—",
        iso=detected.isoformat(),
        when=timezone.localtime(detected).strftime("%Y-%m-%d %H:%M"),
        age=_human(now - detected),
        commander=username(incident.commander),
        state=state,
        failing=failing,
    )
