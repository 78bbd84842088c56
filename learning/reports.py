"""The weekly stability report and the on-call handoff: read in a fixed number of queries.

Both render as text too, for the management commands and for Slack.
"""

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone

from executor.choices import ActionStatus
from executor.connectors import slack
from executor.decision_notices import slack_target
from executor.models import ActionRequest, Approval
from executor.results import StepBlocked, StepError, StepTimeout
from incidents.cadence import update_overdue_minutes, with_last_update
from incidents.choices import IncidentStatus, Severity, TimelineKind, severity_info
from incidents.models import Alert, Incident, StatusUpdate, TimelineEvent

from .choices import FOLLOW_UP_OPEN
from .drafting.facts import humanize
from .models import FollowUp, Handoff, Postmortem
from .reliability import reliability

logger = logging.getLogger(__name__)

# An alert that fired this often in a week and never opened an incident is noise.
NOISY_ALERT_MIN_FIRINGS = 3


def _week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The last full week, Monday 00:00 to Monday 00:00 in the local time zone."""
    local = timezone.localtime(now)
    this_monday = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=local.weekday()
    )
    return this_monday - timedelta(days=7), this_monday


def _change(now: float | None, before: float | None) -> str:
    if now is None:
        return "n/a"
    if before is None or before == 0:
        return humanize(now)
    pct = (now - before) / before * 100
    return f"{humanize(now)} ({'+' if pct >= 0 else ''}{pct:.0f}% vs {humanize(before)})"


@dataclass
class WeeklyReport:
    start: datetime
    end: datetime
    total: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    mtta: str = "n/a"
    mttr: str = "n/a"
    previous_total: int = 0
    top_services: list[tuple[str, int]] = field(default_factory=list)
    repeated_causes: list[dict] = field(default_factory=list)
    refired_alerts: list[dict] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    approvals: dict[str, int] = field(default_factory=dict)
    overdue_follow_ups: list[dict] = field(default_factory=list)
    noisy_alerts: list[dict] = field(default_factory=list)

    @property
    def last_day(self) -> datetime:
        return self.end - timedelta(days=1)

    def as_text(self) -> str:
        lines = [
            f"Weekly stability report, {self.start:%Y-%m-%d} to {self.last_day:%Y-%m-%d}",
            f"Incidents: {self.total} (week before: {self.previous_total}): "
            + ", ".join(f"{k} {v}" for k, v in self.by_severity.items()),
            f"MTTA: {self.mtta}",
            f"MTTR: {self.mttr}",
            "Most incidents: "
            + (", ".join(f"{s or '(none)'} {n}" for s, n in self.top_services) or "none"),
        ]
        if self.repeated_causes:
            lines.append("Repeated patterns (same service and root cause, 30 days):")
            lines += [
                f"  - {r['service']}: {r['category']} x{r['count']}" for r in self.repeated_causes
            ]
        if self.refired_alerts:
            lines.append("Alerts firing again after clearing:")
            lines += [
                f"  - #{r['incident_id']} {r['title']} x{r['count']}" for r in self.refired_alerts
            ]
        lines.append(
            "Actions: " + (", ".join(f"{k} {v}" for k, v in self.actions.items()) or "none")
        )
        lines.append(
            "Approvals: " + (", ".join(f"{k} {v}" for k, v in self.approvals.items()) or "none")
        )
        lines.append(f"Overdue follow-ups: {len(self.overdue_follow_ups)}")
        lines += [
            f"  - {f['title']} ({f['owner'] or 'no owner'}, due {f['due']})"
            for f in self.overdue_follow_ups[:10]
        ]
        if self.noisy_alerts:
            lines.append("Noisy alerts (fired often, cleared on their own, never an incident):")
            lines += [
                f"  - {a['title']} x{a['count']}: {a['suggestion']}" for a in self.noisy_alerts
            ]
        return "\n".join(lines)


def weekly_report(*, now: datetime | None = None) -> WeeklyReport:
    start, end = _week_bounds(now or timezone.now())
    previous = start - timedelta(days=7)
    report = WeeklyReport(start=start, end=end)
    week = Incident.objects.filter(detected_at__gte=start, detected_at__lt=end)
    counts = dict(week.values_list("severity").annotate(n=Count("pk")).order_by())
    report.by_severity = {s: counts.get(s, 0) for s in Severity.values}
    report.total = sum(counts.values())
    rows = {r.bucket: r for r in reliability(since=previous, until=end, bucket="week")}
    this = rows.get(timezone.localtime(start).date().isoformat())
    before = rows.get(timezone.localtime(previous).date().isoformat())
    report.previous_total = before.count if before else 0
    report.mtta = _change(
        this.get("tta", "mean") if this else None, before.get("tta", "mean") if before else None
    )
    report.mttr = _change(
        this.get("ttr", "mean") if this else None, before.get("ttr", "mean") if before else None
    )
    report.top_services = list(
        week.values_list("service").annotate(n=Count("pk")).order_by("-n", "service")[:5]
    )
    report.repeated_causes = [
        {"service": r["incident__service"], "category": r["root_cause_category"], "count": r["n"]}
        for r in Postmortem.objects.filter(
            incident__detected_at__gte=end - timedelta(days=30),
            incident__detected_at__lt=end,
        )
        .exclude(root_cause_category__in=["", "unknown"])
        .values("incident__service", "root_cause_category")
        .annotate(n=Count("pk"))
        .filter(n__gte=2)
        .order_by("-n")[:10]
    ]
    report.refired_alerts = [
        {"incident_id": r["incident_id"], "title": r["incident__title"], "count": r["n"]}
        for r in TimelineEvent.objects.filter(
            kind=TimelineKind.ALERT_RECEIVED,
            created_at__gte=start,
            created_at__lt=end,
            payload__refired=True,
        )
        .values("incident_id", "incident__title")
        .annotate(n=Count("pk"))
        .order_by("-n")[:10]
    ]
    report.actions = dict(
        ActionRequest.objects.filter(updated_at__gte=start, updated_at__lt=end)
        .exclude(status=ActionStatus.PROPOSED)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by("status")
    )
    report.approvals = dict(
        Approval.objects.filter(decided_at__gte=start, decided_at__lt=end)
        .values_list("decision")
        .annotate(n=Count("pk"))
        .order_by("decision")
    )
    report.overdue_follow_ups = [
        {"title": t, "owner": o or "", "due": d.isoformat(), "incident_id": i}
        for t, o, d, i in FollowUp.objects.filter(
            status__in=FOLLOW_UP_OPEN, due_date__lt=timezone.localtime(end).date()
        )
        .order_by("due_date")
        .values_list("title", "owner__username", "due_date", "incident_id")[:50]
    ]
    report.noisy_alerts = [
        {
            "title": r["title"],
            "source": r["source__slug"],
            "count": r["n"],
            "suggestion": (
                f"fired {r['n']} times and always cleared before the suspend window: raise its "
                "threshold or its 'for' duration, or route it to a ticket, not a page"
            ),
        }
        for r in Alert.objects.filter(
            incident__isnull=True, last_seen__gte=start, last_seen__lt=end
        )
        .values("title", "source__slug")
        .annotate(n=Max("count"))
        .filter(n__gte=NOISY_ALERT_MIN_FIRINGS)
        .order_by("-n")[:10]
    ]
    return report


def post_to_slack(text: str) -> bool:
    """Post plain text to the configured Slack channel; False when not configured or it failed."""
    configured = slack_target()
    if configured is None:
        return False
    target, channel = configured
    deadline = time.monotonic() + 10.0
    try:
        if channel:
            slack.post_message(target, text, channel=channel, deadline=deadline)
        else:
            slack.post_webhook(target, text, deadline=deadline)
    except (StepError, StepBlocked, StepTimeout) as exc:
        logger.warning("weekly report not posted to Slack: %s", exc)
        return False
    return True


def post_weekly_report(*, now: datetime | None = None) -> bool:
    return post_to_slack(weekly_report(now=now).as_text())


# --- on-call handoff ----------------------------------------------------------------


@dataclass
class HandoffReport:
    since: datetime | None
    last_from: str = ""
    last_risks: str = ""
    open_incidents: list[dict] = field(default_factory=list)
    resolved: list[dict] = field(default_factory=list)
    pending_approvals: list[dict] = field(default_factory=list)
    overdue_updates: list[dict] = field(default_factory=list)
    overdue_follow_ups: list[dict] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data

    def as_text(self) -> str:
        lines = ["On-call handoff"]
        if self.since:
            lines.append(f"Since the last handoff ({self.since:%Y-%m-%d %H:%M}, {self.last_from})")
        lines.append(f"Open incidents: {len(self.open_incidents)}")
        lines += [
            f"  - #{i['id']} {i['severity']} {i['status']}: {i['title']} (last update: "
            f"{i['last_update'] or 'none'})"
            for i in self.open_incidents
        ]
        lines.append(f"Resolved since: {len(self.resolved)}")
        lines += [f"  - #{i['id']} {i['title']}" for i in self.resolved]
        lines.append(f"Pending approvals: {len(self.pending_approvals)}")
        lines += [
            f"  - #{a['incident_id']} {a['step_id']} ({a['action']})"
            for a in self.pending_approvals
        ]
        lines.append(f"Overdue status updates: {len(self.overdue_updates)}")
        lines += [f"  - #{i['id']} due {i['cadence']}" for i in self.overdue_updates]
        lines.append(f"Overdue follow-ups: {len(self.overdue_follow_ups)}")
        lines += [f"  - {f['title']} (due {f['due']})" for f in self.overdue_follow_ups]
        if self.last_risks:
            lines.append(f"Known risks (last handoff): {self.last_risks}")
        return "\n".join(lines)


def handoff_report(*, now: datetime | None = None) -> HandoffReport:
    now = now or timezone.now()
    last = Handoff.objects.select_related("from_user").first()
    report = HandoffReport(
        since=last.created_at if last else None,
        last_from=last.from_user.get_username() if last and last.from_user else "",
        last_risks=last.known_risks if last else "",
    )
    last_update = StatusUpdate.objects.filter(incident=OuterRef("pk")).order_by("-created_at")
    open_incidents = with_last_update(
        Incident.objects.exclude(status=IncidentStatus.RESOLVED)
        .annotate(last_update_body=Subquery(last_update.values("body")[:1]))
        .order_by("severity", "-detected_at")
    )[:100]
    for incident in open_incidents:
        report.open_incidents.append(
            {
                "id": incident.pk,
                "title": incident.title,
                "severity": incident.severity,
                "status": incident.status,
                "last_update": (incident.last_update_body or "")[:200],
            }
        )
        # The one overdue rule (published updates count, drafts do not): incidents/cadence.py.
        if update_overdue_minutes(incident, now):
            report.overdue_updates.append(
                {
                    "id": incident.pk,
                    "title": incident.title,
                    "cadence": severity_info(incident.severity).cadence,
                }
            )
    resolved = Incident.objects.filter(status=IncidentStatus.RESOLVED)
    resolved = (
        resolved.filter(resolved_at__gte=last.created_at)
        if last
        else resolved.filter(resolved_at__gte=now - timedelta(days=1))
    )
    report.resolved = [
        {"id": pk, "title": title}
        for pk, title in resolved.order_by("-resolved_at").values_list("pk", "title")[:50]
    ]
    report.pending_approvals = list(
        ActionRequest.objects.filter(status=ActionStatus.AWAITING_APPROVAL)
        .order_by("created_at")
        .values("incident_id", "step_id", "action")[:50]
    )
    report.overdue_follow_ups = [
        {"title": t, "due": d.isoformat(), "owner": o or ""}
        for t, d, o in FollowUp.objects.filter(
            status__in=FOLLOW_UP_OPEN, due_date__lt=timezone.localtime(now).date()
        )
        .order_by("due_date")
        .values_list("title", "due_date", "owner__username")[:50]
    ]
    return report
