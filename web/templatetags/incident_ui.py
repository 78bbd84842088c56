"""Display helpers for the ops UI: badge colours and labels live here, not on models."""

import json
from datetime import datetime, timedelta
from html import escape as html_escape
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
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

    Written here rather than in the template, and with the standard library's escape
    rather than format_html: both cost several ms on a page's 25 rows, the largest part
    of the list's server time. Every value from a row passes through `_e`.
    """
    now = timezone.now()
    link = reverse("incidents:detail", args=[0]).replace("/0/", "/{}/")
    return mark_safe("\n".join(_incident_row(i, now, link) for i in incidents))  # noqa: S308


def _e(value: Any) -> str:
    return html_escape(str(value))


def _incident_row(incident: Any, now: datetime, link: str) -> str:
    """One row's HTML; every interpolated value is escaped here."""
    sev = _e(severity_class(incident.severity))
    late = update_overdue_minutes(incident, now)
    overdue = (
        f' <span class="badge b-bad" data-testid="overdue">update overdue by {int(late)} min</span>'
        if late
        else ""
    )
    if incident.awaiting_approvals:
        state = f'<span class="badge b-warn">{int(incident.awaiting_approvals)} awaiting approval</span>'
    elif incident.runbook_status:
        state = (
            f'<span class="badge {_e(runbook_class(incident.runbook_status))}">'
            f"v{_e(incident.runbook_version)} {_e(incident.runbook_status)}</span>"
        )
    else:
        state = '<span class="muted">none</span>'
    n = incident.failed_checks
    failing = (
        f'<span class="badge b-bad">{int(n)} check{"" if n == 1 else "s"} failing</span>'
        if n
        else ""
    )
    detected = incident.detected_at
    resolved = " is-resolved" if incident.status == IncidentStatus.RESOLVED else ""
    return (
        f'<tr class="row {sev}{resolved}">'
        f'<td data-label="Severity"><span class="sev {sev}">{_e(incident.severity)}</span></td>'
        f'<td class="title"><a href="{_e(link.format(int(incident.pk)))}">'
        f'<span class="muted">#{int(incident.pk)}</span> {_e(incident.title)}</a></td>'
        f'<td data-label="Status"><span class="badge {_e(status_class(incident.status))}">'
        f"{_e(incident.get_status_display())}</span>{overdue}</td>"
        f'<td data-label="Service">{_e(incident.service or "—")}</td>'
        f'<td data-label="Age"><time datetime="{_e(detected.isoformat())}" '
        f'title="{_e(timezone.localtime(detected).strftime("%Y-%m-%d %H:%M"))} UTC">'
        f"{_e(_human(now - detected))}</time></td>"
        f'<td data-label="Commander">{_e(incident.commander_name or "—")}</td>'
        f'<td data-label="Runbook" class="row-state">{state} {failing}</td>'
        "</tr>"
    )
