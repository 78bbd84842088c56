"""The words shown for a timeline event, rendered from its kind and payload.

Rows written before events carried their parameters only have `message`; any row the
renderer cannot read (unknown kind, missing parameter) shows that stored text instead.
"""

from collections import Counter
from collections.abc import Callable
from typing import Any

from .choices import TimelineKind


def _declared(p: dict) -> str:
    return f"Declared {p['severity']}: {p['title']}"


def _status_changed(p: dict) -> str:
    return f"Status {p['from']} → {p['to']}"


def _acknowledged(p: dict) -> str:
    return "Acknowledged"


def _severity_changed(p: dict) -> str:
    return f"Severity {p['from']} → {p['to']}"


def _note(p: dict) -> str:
    return p["text"]


def _role_assigned(p: dict) -> str:
    name, label = p["user_name"], p["role_label"]
    return f"{name} is now {label}" if name else f"No {label} any more"


def _status_update(p: dict) -> str:
    draft = " (draft, not published)" if p.get("draft") else ""
    return f"{p['audience_label']}{draft}: {p['body']}"


def _status_edited(p: dict) -> str:
    return f"Draft customer notice edited: {p['body']}"


def _status_published(p: dict) -> str:
    return f"{p['publisher']} published the customer notice: {p['body']}"


def _war_room(p: dict) -> str:
    return f"War room #{p['channel']} opened in Slack"


def _slack_undelivered(p: dict) -> str:
    return f"Could not post to Slack ({p['what']}): {p['error']}"


def _slack_users_unknown(p: dict) -> str:
    return "Not found in Slack, not invited: " + ", ".join(p["emails"])


def _update_nudged(p: dict) -> str:
    return f"Status update overdue by {p['overdue_minutes']} min; nudged {p['nudged']}"


def _stakeholders_emailed(p: dict) -> str:
    return f"Emailed the update to {p['recipients']} stakeholder(s)"


def _runbook_queued(p: dict) -> str:
    if p.get("attempt", 1) > 1:
        return f"Runbook v{p['version']} queued again (attempt {p['attempt']}): {p['reason']}"
    return f"Runbook v{p['version']} queued"


def _generation_fallback(p: dict) -> str:
    return "Fell back to the offline planner: " + "; ".join(p["notes"])


def _runbook_invalid(p: dict) -> str:
    return f"Runbook v{p['version']} is invalid ({p['error_count']} errors); nothing was run"


def _runbook_ready(p: dict) -> str:
    return (
        f"Runbook v{p['version']} ready ({p['author']}): {p['incident_type']} on "
        f"{p['affected_system']}, confidence {p['confidence']:.0%}, "
        f"{p['checks']} checks, {p['actions_count']} actions"
    )


def _runbook_failed(p: dict) -> str:
    return f"Runbook v{p['version']} failed: {p['error'][:300]}"


def _execution_refused(p: dict) -> str:
    error = p["error"]
    if p["crashed"]:
        return f"Checks of runbook v{p['version']} failed: {error[:300]}"
    return f"Refused to run runbook v{p['version']}: {error}"


def _checks_started(p: dict) -> str:
    return f"Running {p['checks']} checks of runbook v{p['version']} ({p['trigger']})"


def _checks_done(p: dict) -> str:
    counts = p["counts"]
    return "Checks done: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none")


def _action_proposed(p: dict) -> str:
    by_status = Counter(a["status"] for a in p["actions"])
    n = len(p["actions"])
    return f"{n} action{'s' if n != 1 else ''} proposed: " + ", ".join(
        f"{count} {s.replace('_', ' ')}" for s, count in sorted(by_status.items())
    )


def _step(p: dict) -> str:
    """The runbook step's id; rows written before the rename call it action_id."""
    return p["step_id"] if "step_id" in p else p["action_id"]


def _action_status(p: dict) -> str:
    change, named = p["change"], f"{_step(p)} ({p['action']})"
    if change == "started":
        return f"{named} started"
    if change == "queued":
        return f"{named} approved and queued"
    if change == "expired":
        return f"Approval request for {named} expired unanswered; ask again to run it"
    if change == "reasked":
        reason = p["reason"]
        return f"{p['actor_name']} asked again for approval of {named}; dry-run made afresh" + (
            f": {reason[:300]}" if reason else ""
        )
    if change == "blocked":
        return f"{named} blocked: {p['reason']}"
    if change == "target_changed":
        return f"Approval of {named} asked again with a fresh dry-run: {p['reason']}"
    if change == "needs_approval":
        return f"{named} needs approval: {p['reason']}"
    if change == "lost":
        return f"{_step(p)}: worker lost: outcome unknown, verify before retrying"
    if change == "finished":
        verb = "succeeded" if p["succeeded"] else "failed"
        # The sweeper had already given it up as lost: say the outcome came late.
        late = " (after it had been marked lost; the request keeps that state)" if p["late"] else ""
        return f"{named} {verb}{late}: {p['summary']}"
    raise KeyError(change)


def _approval(p: dict) -> str:
    named, reason = f"{_step(p)} ({p['action']})", p["reason"]
    if p["decision"] == "reject":
        return f"{p['approver']} rejected {named}: {reason[:300]}"
    needed = p["required"]
    progress = f" ({p['approvals']} of {needed} approvals)" if needed > 1 else ""
    return f"{p['approver']} approved {named}{progress}" + (f": {reason[:300]}" if reason else "")


def _notification(p: dict) -> str:
    if p["delivered"]:
        return f"Slack told: {p['text']}"
    return f"Slack was not told about {_step(p)} ({p['event']}): {p['error']}"


def _alert_received(p: dict) -> str:
    parts = []
    if p["firing"]:
        parts.append(f"{p['firing']} firing")
    if p["resolved"]:
        parts.append(f"{p['resolved']} resolved")
    again = " (firing again after the alerts had cleared)" if p["refired"] else ""
    return f"{p['count']} alert update(s): {', '.join(parts)}{again}"


def _alerts_cleared(p: dict) -> str:
    return (
        f"Alerts cleared: all {p['alerts']} alert(s) have resolved. A person resolves the incident."
    )


def _postmortem(p: dict) -> str:
    change = p["change"]
    if change == "drafted":
        return f"Postmortem drafted ({p['author']})" + (
            f": {'; '.join(p['notes'])}" if p.get("notes") else ""
        )
    if change == "status":
        return f"Postmortem {p['from'].replace('_', ' ')} → {p['to'].replace('_', ' ')}"
    if change == "edited":
        return "Postmortem edited: " + ", ".join(p["fields"])
    if change == "reminder":
        return f"Postmortem still {p['status'].replace('_', ' ')} {p['hours']} h after resolution"
    raise KeyError(change)


def _follow_up(p: dict) -> str:
    change, title = p["change"], p["title"]
    if change == "created":
        owner = f" for {p['owner']}" if p.get("owner") else ""
        due = f", due {p['due']}" if p.get("due") else ""
        return f"Follow-up added{owner}{due}: {title}"
    if change == "status":
        return f"Follow-up {p['to'].replace('_', ' ')}: {title}"
    if change == "overdue":
        return f"Follow-up overdue since {p['due']}: {title}"
    raise KeyError(change)


RENDERERS: dict[str, Callable[[dict], str]] = {
    TimelineKind.DECLARED: _declared,
    TimelineKind.ACKNOWLEDGED: _acknowledged,
    TimelineKind.STATUS_CHANGED: _status_changed,
    TimelineKind.SEVERITY_CHANGED: _severity_changed,
    TimelineKind.NOTE: _note,
    TimelineKind.RUNBOOK_QUEUED: _runbook_queued,
    TimelineKind.RUNBOOK_READY: _runbook_ready,
    TimelineKind.RUNBOOK_INVALID: _runbook_invalid,
    TimelineKind.RUNBOOK_FAILED: _runbook_failed,
    TimelineKind.GENERATION_FALLBACK: _generation_fallback,
    TimelineKind.CHECKS_STARTED: _checks_started,
    TimelineKind.CHECKS_DONE: _checks_done,
    TimelineKind.EXECUTION_REFUSED: _execution_refused,
    TimelineKind.ACTION_PROPOSED: _action_proposed,
    TimelineKind.ACTION_STATUS: _action_status,
    TimelineKind.APPROVAL: _approval,
    TimelineKind.NOTIFICATION: _notification,
    TimelineKind.ROLE_ASSIGNED: _role_assigned,
    TimelineKind.STATUS_UPDATE: _status_update,
    TimelineKind.ALERT_RECEIVED: _alert_received,
    TimelineKind.ALERTS_CLEARED: _alerts_cleared,
    TimelineKind.POSTMORTEM: _postmortem,
    TimelineKind.FOLLOW_UP: _follow_up,
    TimelineKind.STATUS_EDITED: _status_edited,
    TimelineKind.STATUS_PUBLISHED: _status_published,
    TimelineKind.WAR_ROOM: _war_room,
    TimelineKind.SLACK_UNDELIVERED: _slack_undelivered,
    TimelineKind.SLACK_USERS_UNKNOWN: _slack_users_unknown,
    TimelineKind.UPDATE_NUDGED: _update_nudged,
    TimelineKind.STAKEHOLDERS_EMAILED: _stakeholders_emailed,
}


def render_text(kind: str, payload: dict | None) -> str | None:
    """The text for kind + payload, or None when they do not hold what the kind needs."""
    renderer = RENDERERS.get(kind)
    if renderer is None or not isinstance(payload, dict):
        return None
    try:
        return renderer(payload)
    except (KeyError, TypeError, ValueError):
        return None


def event_text(event: Any) -> str:
    """What a timeline row says: rendered from kind + payload, else its stored message."""
    rendered = render_text(event.kind, event.payload)
    return event.message if rendered is None else rendered
