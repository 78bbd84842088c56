"""What the war room shows: the channel's name and topic, the incident card, the summary.

Built from the incident as it is when the message is sent, so a retried post never
shows a stale card.
"""

import re
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from incidents.choices import IncidentStatus, TimelineKind, severity_info
from incidents.metrics import time_to_acknowledge, time_to_resolve
from incidents.models import Incident

APPROVAL_QUEUE_PATH = "/admin/executor/actionrequest/"
ACK_ACTION = "incident_acknowledge"


def escape(text: str) -> str:
    """Slack's escaping for text we did not write (alert titles, action output, Claude):
    without it `<!channel>` in a log line would notify the whole war room."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def incident_url(incident: Incident) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("incidents:detail", args=[incident.pk])


def queue_url() -> str:
    return settings.SITE_URL.rstrip("/") + APPROVAL_QUEUE_PATH


def channel_name(incident: Incident, attempt: int = 0) -> str:
    """`inc-<yyyymmdd>-<id>-<slug>`, within Slack's 80 characters; `-2`, `-3` when taken."""
    slug = re.sub(r"[^a-z0-9]+", "-", incident.title.lower()).strip("-") or "incident"
    head = f"inc-{incident.detected_at:%Y%m%d}-{incident.pk}-"
    tail = f"-{attempt + 1}" if attempt else ""
    return head + slug[: 80 - len(head) - len(tail)].rstrip("-") + tail


def channel_topic(incident: Incident) -> str:
    return f"{incident.severity} · {incident.get_status_display()} · {incident.title}"[:250]


def status_line(incident: Incident) -> str:
    """Where the incident stands, in one line (`/inc status`, a mention in the war room)."""
    commander = incident.commander.get_username() if incident.commander else "nobody"
    return (
        f"#{incident.pk} {escape(incident.title)}: {incident.severity}, "
        f"{incident.get_status_display()}, "
        f"commander {commander}. {incident_url(incident)} · approvals: {queue_url()}"
    )


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "–"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _person(user: object) -> str:
    return user.get_username() if user is not None else "–"  # type: ignore[attr-defined]


def _diagnosis(incident: Incident) -> str:
    event = incident.timeline.filter(kind=TimelineKind.RUNBOOK_READY).order_by("-id").first()
    return event.message if event else "No runbook yet"


def card(incident: Incident) -> dict:
    """`text` and `attachments` for chat.postMessage / chat.update: the incident card."""
    info = severity_info(incident.severity)
    opened = duration(
        (incident.resolved_at or timezone.now()) - incident.detected_at if incident else None
    )
    fields = [
        ("Severity", incident.severity),
        ("Status", incident.get_status_display()),
        ("Commander", _person(incident.commander)),
        ("Comms lead", _person(incident.comms_lead)),
        ("Tech lead", _person(incident.tech_lead)),
        ("Service", incident.service or "–"),
        ("Open for", opened),
        ("Updates", info.cadence),
    ]
    buttons: list[dict] = []
    if incident.acknowledged_at is None and incident.status != IncidentStatus.RESOLVED:
        buttons.append(
            {
                "type": "button",
                "action_id": ACK_ACTION,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": str(incident.pk),
                "style": "primary",
            }
        )
    buttons += [
        {
            "type": "button",
            "action_id": "open_incident",
            "text": {"type": "plain_text", "text": "Open incident"},
            "url": incident_url(incident),
        },
        {
            "type": "button",
            "action_id": "open_queue",
            "text": {"type": "plain_text", "text": "Approval queue"},
            "url": queue_url(),
        },
    ]
    blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"#{incident.pk} {incident.title}"[:150]},
        },
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": escape(_diagnosis(incident)[:300])}],
        },
        {"type": "actions", "block_id": f"incident-{incident.pk}", "elements": buttons},
    ]
    text = f"[{incident.severity}] #{incident.pk} {escape(incident.title)}: {incident.status}"
    return {"text": text, "attachments": [{"color": info.colour, "blocks": blocks}]}


def thread_text(incident: Incident, text: str, event_id: int | None) -> str:
    """One threaded update, linking back to its line of the timeline."""
    anchor = f"#event-{event_id}" if event_id else ""
    return f"{escape(text[:2500])} <{incident_url(incident)}{anchor}|view>"


def final_summary(incident: Incident) -> str:
    """The closing message: duration, response times, what was found, what was done."""
    actions = incident.timeline.filter(kind=TimelineKind.ACTION_STATUS).order_by("id")
    done = [
        f"• {escape(e.message)} "
        f"(by {e.actor.get_username() if e.actor else e.actor_label or 'system'})"
        for e in actions.select_related("actor")
        if (e.payload or {}).get("change") == "finished"
    ]
    open_notes = [
        a.body
        for a in incident.status_updates.filter(published_at__isnull=True).order_by("created_at")
    ]
    lines = [
        f"*Resolved: #{incident.pk} {escape(incident.title)}*",
        f"Duration {duration(time_to_resolve(incident))} · "
        f"time to acknowledge {duration(time_to_acknowledge(incident))} · "
        f"time to resolve {duration(time_to_resolve(incident))}",
        f"Found: {escape(_diagnosis(incident))}",
        "Actions taken:",
        *(done or ["• none"]),
        "Open follow-ups: "
        + (f"{len(open_notes)} unpublished customer notice(s)" if open_notes else "none recorded"),
        f"<{incident_url(incident)}|Incident page>",
    ]
    return "\n".join(lines)
