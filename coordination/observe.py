"""What the war room hears from the timeline: the pipeline connects this to
`incidents.signals.timeline_recorded`, so the lower apps never know Slack exists."""

import logging
from functools import partial
from typing import Any

from django.db import transaction

from executor.decision_notices import war_room_notice
from incidents.choices import IncidentStatus, TimelineKind, severity_info

from .client import slack_enabled
from .models import SlackPost, WarRoom
from .outbox import post_queue, war_room_request
from .stakeholders import stakeholders_email

logger = logging.getLogger(__name__)

# Changes the pinned card shows.
CARD_KINDS = {
    TimelineKind.STATUS_CHANGED,
    TimelineKind.SEVERITY_CHANGED,
    TimelineKind.ROLE_ASSIGNED,
    TimelineKind.RUNBOOK_READY,
    TimelineKind.ACKNOWLEDGED,
}
# One reply under the card each, in timeline order.
THREAD_KINDS = {
    TimelineKind.ACKNOWLEDGED,
    TimelineKind.STATUS_CHANGED,
    TimelineKind.SEVERITY_CHANGED,
    TimelineKind.ROLE_ASSIGNED,
    TimelineKind.RUNBOOK_READY,
    TimelineKind.RUNBOOK_FAILED,
    TimelineKind.RUNBOOK_INVALID,
    TimelineKind.CHECKS_DONE,
    TimelineKind.EXECUTION_REFUSED,
    TimelineKind.ACTION_PROPOSED,
    TimelineKind.ACTION_STATUS,
    TimelineKind.APPROVAL,
    TimelineKind.STATUS_UPDATE,
    TimelineKind.STATUS_PUBLISHED,
    TimelineKind.NOTE,
}

NOTICE_KINDS = {TimelineKind.ACTION_PROPOSED, TimelineKind.ACTION_STATUS, TimelineKind.APPROVAL}


def war_room_replies(incident_id: int) -> bool:
    """Whether the incident's news goes under its war room's card (so not to a channel)."""
    return slack_enabled() and WarRoom.objects.filter(incident_id=incident_id).exists()


def on_timeline_events(*, events: list, **_: Any) -> None:
    """Queue what the war room should show for new timeline rows (same transaction).

    The rooms of a whole batch are read in one query, so an alert storm's timeline rows
    cost one lookup, not one each."""
    for event in events:
        _email_stakeholders(event)
    if not slack_enabled():
        return
    incident_ids = {e.incident_id for e in events if e.kind != TimelineKind.DECLARED}
    rooms = {r.incident_id: r for r in WarRoom.objects.filter(incident_id__in=incident_ids)}
    for event in events:
        _observe(event, rooms)


def _email_stakeholders(event: Any) -> None:
    kind, payload = event.kind, event.payload or {}
    emailed = kind == TimelineKind.STATUS_PUBLISHED or (
        kind == TimelineKind.STATUS_UPDATE and payload.get("audience") == "executive"
    )
    if emailed and payload.get("status_update_id"):
        transaction.on_commit(
            partial(stakeholders_email, status_update_id=payload["status_update_id"])
        )


def _observe(event: Any, rooms: dict[int, WarRoom]) -> None:
    kind, payload = event.kind, event.payload or {}
    if kind == TimelineKind.DECLARED:
        if severity_info(payload.get("severity", "")).pages:
            rooms[event.incident_id], _ = war_room_request(incident=event.incident_id)
        return
    room = rooms.get(event.incident_id)
    if room is None:
        # Raised to a paging severity: it gets its room now.
        if kind == TimelineKind.SEVERITY_CHANGED and severity_info(payload.get("to", "")).pages:
            rooms[event.incident_id], _ = war_room_request(incident=event.incident_id)
        return
    if kind in CARD_KINDS:
        post_queue(room=room, kind=SlackPost.Kind.CARD)
    if kind == TimelineKind.STATUS_UPDATE and payload.get("draft"):
        return  # a customer notice is not news until it is published
    # Approval news is told in the executor's words (rendered when the reply is sent);
    # the timeline's text stays as the fallback should the request be gone by then.
    notice = war_room_notice(kind, payload) if kind in NOTICE_KINDS else None
    if notice is not None:
        if notice.render is not None:
            post_queue(
                room=room,
                kind=SlackPost.Kind.THREAD,
                payload={"notice": notice.render, "text": event.message, "event_id": event.pk},
            )
        return
    if kind in THREAD_KINDS:
        post_queue(
            room=room,
            kind=SlackPost.Kind.THREAD,
            payload={"text": event.message, "event_id": event.pk},
        )
    if kind == TimelineKind.ROLE_ASSIGNED and payload.get("user_id"):
        post_queue(
            room=room, kind=SlackPost.Kind.INVITE, payload={"user_ids": [payload["user_id"]]}
        )
    if kind == TimelineKind.STATUS_CHANGED and payload.get("to") == IncidentStatus.RESOLVED:
        post_queue(room=room, kind=SlackPost.Kind.CHANNEL, payload={"summary": True})
