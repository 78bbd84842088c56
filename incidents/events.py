"""The one way to append to an incident's timeline: one function per kind of event.

Each function stores the kind and its parameters in `payload`; the words shown are
rendered from those by incidents.event_text. `message` keeps the rendered text of the
moment too, for search and for readers of the column. Lower apps (runbooks, executor)
pass plain values, since this app cannot import their models.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .choices import TimelineKind
from .event_text import render_text
from .models import Incident, TimelineEvent
from .signals import timeline_recorded
from .together import write_later, write_together
from .transitions import Move

IncidentRef = Incident | int


def timeline_event(
    *,
    incident: IncidentRef,
    kind: TimelineKind | str,
    payload: dict | None = None,
    actor: Any = None,
    actor_label: str = "",
    message: str = "",
) -> TimelineEvent:
    """An unsaved event; timeline_record saves one, timeline_record_many several at once.

    `message` is only used when kind + payload cannot be rendered (a free-form row).
    """
    payload = payload or {}
    incident_id = incident if isinstance(incident, int) else incident.pk
    user = actor if getattr(actor, "is_authenticated", False) else None
    text = render_text(kind, payload)
    return TimelineEvent(
        incident_id=incident_id,
        kind=kind,
        actor=user,
        actor_label=actor_label or ("" if user else "system"),
        message=(message if text is None else text)[:4000],
        payload=payload,
    )


def timeline_record_many(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Append events made by timeline_event in one INSERT (a batch touching many incidents)."""
    saved = TimelineEvent.objects.bulk_create(events) if events else []
    timeline_announce(saved)
    return saved


# Inside `timeline_batch()`: the events recorded so far, appended together when it ends.
_batch: ContextVar[list[TimelineEvent] | None] = ContextVar("timeline_batch", default=None)


@contextmanager
def timeline_collect() -> Iterator[list[TimelineEvent]]:
    """Within the block, the event functions collect their events and save none: the
    caller writes them with other rows in one statement, then passes them to
    `timeline_announce` (both done by `written_with_events`)."""
    pending: list[TimelineEvent] = []
    token = _batch.set(pending)
    try:
        yield pending
    finally:
        _batch.reset(token)


def timeline_announce(events: list[TimelineEvent]) -> None:
    """Tell the observers of the timeline about events the caller has just written."""
    if events:
        timeline_recorded.send(sender=TimelineEvent, events=events)


def written_with_events(
    rows: list[list[Any]],
    record: Callable[[], None],
    move: Move | None = None,
    *,
    only_if_moved: bool = False,
) -> bool:
    """PostgreSQL: `record()` makes its timeline events, and whatever the hand-offs it
    announces write (`incidents.together.save_or_defer`); nothing is saved yet. Then
    `rows`, those rows and the events are one statement (`write_together`, with `move`),
    and only once it has written them do the hand-offs' follow-ups run and the events
    reach their observers. Returns whether the move was made; with `only_if_moved`,
    False means nothing was written and nothing follows."""
    with timeline_collect() as events, write_later() as pending:
        record()
    moved = write_together([*rows, events, *pending.by_model()], move, only_if_moved=only_if_moved)
    if only_if_moved and not moved:
        return False
    pending.written()
    timeline_announce(events)
    return moved


@contextmanager
def timeline_batch() -> Iterator[list[TimelineEvent]]:
    """Within the block, the event functions collect their events, and they are appended
    in one INSERT when it ends (unless it raises). Use it inside the transaction the
    events belong to; an event has no pk until the block ends."""
    with timeline_collect() as pending:
        yield pending
    timeline_record_many(pending)


def timeline_record(
    *,
    incident: IncidentRef,
    kind: TimelineKind | str,
    payload: dict | None = None,
    actor: Any = None,
    actor_label: str = "",
    message: str = "",
) -> TimelineEvent:
    event = timeline_event(
        incident=incident,
        kind=kind,
        payload=payload,
        actor=actor,
        actor_label=actor_label,
        message=message,
    )
    pending = _batch.get()
    if pending is not None:
        pending.append(event)
        return event
    event.save()
    timeline_announce([event])
    return event


# --- incidents -------------------------------------------------------------------


def incident_declared_event(
    *, incident: Incident, actor: Any, severity: str, service: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.DECLARED,
        actor=actor,
        payload={"severity": severity, "service": service, "title": incident.title},
    )


def status_changed_event(
    *, incident: IncidentRef, actor: Any, from_status: str, to_status: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.STATUS_CHANGED,
        actor=actor,
        payload={"from": from_status, "to": to_status},
    )


def acknowledged_event(*, incident: IncidentRef, actor: Any) -> TimelineEvent:
    return timeline_record(incident=incident, kind=TimelineKind.ACKNOWLEDGED, actor=actor)


def severity_changed_event(
    *, incident: IncidentRef, actor: Any, from_severity: str, to_severity: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.SEVERITY_CHANGED,
        actor=actor,
        payload={"from": from_severity, "to": to_severity},
    )


def note_added_event(*, incident: IncidentRef, actor: Any, text: str) -> TimelineEvent:
    return timeline_record(
        incident=incident, kind=TimelineKind.NOTE, actor=actor, payload={"text": text}
    )


def role_assigned_event(
    *,
    incident: IncidentRef,
    actor: Any,
    role: str,
    role_label: str,
    user_id: int | None,
    user_name: str | None,
    previous_user_id: int | None,
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.ROLE_ASSIGNED,
        actor=actor,
        payload={
            "role": role,
            "role_label": role_label,
            "user_id": user_id,
            "user_name": user_name,
            "previous_user_id": previous_user_id,
        },
    )


def status_update_posted_event(
    *,
    incident: IncidentRef,
    actor: Any,
    status_update_id: int,
    audience: str,
    audience_label: str,
    body: str,
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.STATUS_UPDATE,
        actor=actor,
        payload={
            "status_update_id": status_update_id,
            "audience": audience,
            "audience_label": audience_label,
            "body": body,
            "sent": False,
            # A customer notice waits for a publisher; the others are internal.
            "draft": audience == "customer",
        },
    )


def status_update_edited_event(
    *, incident: IncidentRef, actor: Any, status_update_id: int, body: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.STATUS_EDITED,
        actor=actor,
        payload={"status_update_id": status_update_id, "body": body},
    )


def status_update_published_event(
    *, incident: IncidentRef, actor: Any, status_update_id: int, publisher: str, body: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.STATUS_PUBLISHED,
        actor=actor,
        payload={"status_update_id": status_update_id, "publisher": publisher, "body": body},
    )


def update_nudged_event(
    *, incident: IncidentRef, overdue_minutes: int, nudged: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.UPDATE_NUDGED,
        actor_label="cadence",
        payload={"overdue_minutes": overdue_minutes, "nudged": nudged},
    )


def stakeholders_emailed_event(
    *, incident: IncidentRef, status_update_id: int, recipients: int
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.STAKEHOLDERS_EMAILED,
        actor_label="email",
        payload={"status_update_id": status_update_id, "recipients": recipients},
    )


# --- the Slack war room ------------------------------------------------------------


def war_room_opened_event(*, incident: IncidentRef, channel: str) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.WAR_ROOM,
        actor_label="slack",
        payload={"channel": channel},
    )


def slack_undelivered_event(*, incident: IncidentRef, what: str, error: str) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.SLACK_UNDELIVERED,
        actor_label="slack",
        payload={"what": what, "error": error[:500]},
    )


def slack_users_unknown_event(*, incident: IncidentRef, emails: list[str]) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.SLACK_USERS_UNKNOWN,
        actor_label="slack",
        payload={"emails": emails},
    )


# --- alert ingest ----------------------------------------------------------------


def alert_received_event(
    *,
    incident: IncidentRef,
    source_slug: str,
    sources: list[str],
    count: int,
    firing: int,
    resolved: int,
    refired: bool,
    alerts: list[dict],
) -> TimelineEvent:
    """Unsaved: ingest appends a whole batch with timeline_record_many."""
    return timeline_event(
        incident=incident,
        kind=TimelineKind.ALERT_RECEIVED,
        actor_label=f"source:{source_slug}"[:64],
        payload={
            "sources": sources,
            "count": count,
            "firing": firing,
            "resolved": resolved,
            "refired": refired,
            "alerts": alerts,
        },
    )


def alerts_cleared_event(*, incident: IncidentRef, source_slug: str, alerts: int) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.ALERTS_CLEARED,
        actor_label=f"source:{source_slug}"[:64],
        payload={"alerts": alerts},
    )


# --- runbooks --------------------------------------------------------------------


def runbook_queued_event(
    *,
    incident: IncidentRef,
    actor: Any,
    runbook_id: int,
    version: int,
    attempt: int = 1,
    reason: str = "",
) -> TimelineEvent:
    """Queued for the first time, or again (attempt > 1) with the reason why."""
    payload: dict = {"runbook_id": runbook_id, "version": version}
    if attempt > 1:
        payload.update(attempt=attempt, reason=reason[:300])
    return timeline_record(
        incident=incident, kind=TimelineKind.RUNBOOK_QUEUED, actor=actor, payload=payload
    )


def generation_fallback_event(
    *, incident: IncidentRef, runbook_id: int, notes: list[str]
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.GENERATION_FALLBACK,
        actor_label="offline",
        payload={"runbook_id": runbook_id, "notes": notes},
    )


def runbook_invalid_event(
    *, incident: IncidentRef, runbook_id: int, version: int, author: str, errors: list[dict]
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.RUNBOOK_INVALID,
        actor_label=author,
        payload={
            "runbook_id": runbook_id,
            "version": version,
            "error_count": len(errors),
            "errors": errors[:20],
        },
    )


def runbook_ready_event(
    *,
    incident: IncidentRef,
    runbook_id: int,
    version: int,
    author: str,
    document: dict,
    sha256: str,
    key: str,
    notes: list[str],
    usage: dict,
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.RUNBOOK_READY,
        actor_label=author,
        payload={
            "runbook_id": runbook_id,
            "version": version,
            "author": author,
            "incident_type": document["incident_type"],
            "affected_system": document["affected_system"],
            "confidence": document["confidence"],
            "checks": len(document["checks"]),
            "actions_count": len(document["recommended_actions"]),
            "sha256": sha256,
            "key": key,
            "notes": notes,
            "usage": usage,
        },
    )


def runbook_failed_event(
    *, incident: IncidentRef, runbook_id: int, version: int, error: str
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.RUNBOOK_FAILED,
        actor_label="worker",
        payload={"runbook_id": runbook_id, "version": version, "error": error[:300]},
    )


# --- executor --------------------------------------------------------------------


def _execution_payload(runbook_id: int, execution_id: int, version: int) -> dict:
    return {"runbook_id": runbook_id, "execution_id": execution_id, "version": version}


def execution_refused_event(
    *,
    incident: IncidentRef,
    actor: Any = None,
    runbook_id: int,
    execution_id: int,
    version: int,
    error: str,
    crashed: bool,
) -> TimelineEvent:
    """Refused before running (crashed=False), or the run itself broke (crashed=True)."""
    return timeline_record(
        incident=incident,
        kind=TimelineKind.EXECUTION_REFUSED,
        actor=actor,
        actor_label="executor",
        payload={
            **_execution_payload(runbook_id, execution_id, version),
            "error": error[:300] if crashed else error,
            "crashed": crashed,
        },
    )


def checks_started_event(
    *,
    incident: IncidentRef,
    actor: Any,
    runbook_id: int,
    execution_id: int,
    version: int,
    checks: int,
    trigger: str,
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.CHECKS_STARTED,
        actor=actor,
        actor_label="executor",
        payload={
            **_execution_payload(runbook_id, execution_id, version),
            "checks": checks,
            "trigger": trigger,
        },
    )


def checks_done_event(
    *,
    incident: IncidentRef,
    actor: Any,
    runbook_id: int,
    execution_id: int,
    version: int,
    counts: dict[str, int],
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.CHECKS_DONE,
        actor=actor,
        actor_label="executor",
        payload={**_execution_payload(runbook_id, execution_id, version), "counts": counts},
    )


def actions_proposed_event(
    *, incident: IncidentRef, runbook_id: int, actions: list[dict]
) -> TimelineEvent:
    """`actions`: one dict per request with id, step_id, action, status and reason."""
    return timeline_record(
        incident=incident,
        kind=TimelineKind.ACTION_PROPOSED,
        actor_label="executor",
        payload={"runbook_id": runbook_id, "actions": actions},
    )


def action_status_event(
    *,
    incident: IncidentRef,
    action_request_id: int,
    step_id: str,
    action: str,
    change: str,
    actor: Any = None,
    **details: Any,
) -> TimelineEvent:
    """An action request moved. `change` is one of started, queued, expired, reasked
    (details: actor_name, reason), lost, finished (details: succeeded, late, summary, outcome),
    blocked, target_changed, needs_approval (details: reason).
    """
    return timeline_record(
        incident=incident,
        kind=TimelineKind.ACTION_STATUS,
        actor=actor,
        actor_label="" if actor else "executor",
        payload={
            "action_request_id": action_request_id,
            "action": action,
            "step_id": step_id,
            "change": change,
            **details,
        },
    )


def approval_decision_event(
    *,
    incident: IncidentRef,
    approver: Any,
    action_request_id: int,
    step_id: str,
    action: str,
    decision: str,
    reason: str,
    approvals: int | None = None,
    required: int | None = None,
) -> TimelineEvent:
    payload = {
        "action_request_id": action_request_id,
        "decision": decision,
        "approver": approver.get_username(),
        "step_id": step_id,
        "action": action,
        "reason": reason[:300],
    }
    if approvals is not None:
        payload.update(approvals=approvals, required=required)
    return timeline_record(
        incident=incident, kind=TimelineKind.APPROVAL, actor=approver, payload=payload
    )


def decision_notice_event(
    *,
    incident: IncidentRef,
    action_request_id: int,
    step_id: str,
    event: str,
    delivered: bool,
    text: str = "",
    error: str = "",
) -> TimelineEvent:
    """Whether Slack was told about an approval decision: `text` when it was, else `error`."""
    return timeline_record(
        incident=incident,
        kind=TimelineKind.NOTIFICATION,
        actor_label="executor",
        payload={
            "action_request_id": action_request_id,
            "step_id": step_id,
            "event": event,
            "delivered": delivered,
            "text": text,
            "error": error,
        },
    )


# --- after the incident: postmortems and follow-ups (written by the learning app) ---


def postmortem_drafted_event(
    *, incident: IncidentRef, postmortem_id: int, author: str, notes: list[str], actor: Any = None
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.POSTMORTEM,
        actor=actor,
        actor_label="" if getattr(actor, "is_authenticated", False) else author,
        payload={
            "change": "drafted",
            "postmortem_id": postmortem_id,
            "author": author,
            "notes": notes,
        },
    )


def postmortem_status_event(
    *, incident: IncidentRef, postmortem_id: int, from_status: str, to_status: str, actor: Any
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.POSTMORTEM,
        actor=actor,
        payload={
            "change": "status",
            "postmortem_id": postmortem_id,
            "from": from_status,
            "to": to_status,
        },
    )


def postmortem_edited_event(
    *, incident: IncidentRef, postmortem_id: int, fields: list[str], actor: Any
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.POSTMORTEM,
        actor=actor,
        payload={"change": "edited", "postmortem_id": postmortem_id, "fields": fields},
    )


def postmortem_reminder_event(
    *, incident: IncidentRef, postmortem_id: int, status: str, hours: int
) -> TimelineEvent:
    return timeline_record(
        incident=incident,
        kind=TimelineKind.POSTMORTEM,
        actor_label="system",
        payload={
            "change": "reminder",
            "postmortem_id": postmortem_id,
            "status": status,
            "hours": hours,
        },
    )


def follow_up_event(
    *,
    incident: IncidentRef,
    follow_up_id: int,
    change: str,
    title: str,
    actor: Any = None,
    owner: str = "",
    due: str = "",
    to_status: str = "",
) -> TimelineEvent:
    """change: created (owner, due), status (to_status) or overdue (due)."""
    payload: dict[str, Any] = {"change": change, "follow_up_id": follow_up_id, "title": title}
    if change == "created":
        payload.update(owner=owner, due=due)
    elif change == "status":
        payload["to"] = to_status
    elif change == "overdue":
        payload["due"] = due
    return timeline_record(
        incident=incident, kind=TimelineKind.FOLLOW_UP, actor=actor, payload=payload
    )
