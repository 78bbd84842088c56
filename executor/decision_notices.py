"""Tell the requester and the incident's channel what became of an approval request.

The one home of the words for approval news: proposed / awaiting approval, approved,
rejected, expired, run with its result. The decision itself is always on the incident
timeline (the services record it in the same transaction). Slack is told too:

- an incident with a war room gets the news as replies under its card, queued in the
  war room's outbox from the timeline rows (coordination renders them here, with
  `war_room_notice` and `war_room_message`), in order with the rest of the thread;
- otherwise an incoming webhook (SLACK_WEBHOOK_URL) or a bot token with a channel
  (SLACK_BOT_TOKEN, SLACK_CHANNEL) is told of decisions. That post happens on the
  worker after commit, so a slow Slack never holds a click, and its outcome is itself
  recorded on the timeline.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings

from incidents.choices import TimelineKind
from incidents.events import decision_notice_event

from .choices import ActionStatus, Decision
from .connectors import slack
from .models import ActionRequest
from .policy import approvals_required, current_approvals
from .results import StepBlocked, StepError, StepTimeout
from .targets import ResolvedTarget

logger = logging.getLogger(__name__)

SLACK_DEADLINE_SECONDS = 10.0
# The worker's task that posts a decision (executor.tasks defines it). Queued by name:
# the tasks module imports the services, which call this module, so none imports the tasks.
NOTIFY_DECISION_TASK = "executor.notify_decision"

# Whether an incident has a war room that replies under its card. Coordination sits
# above this app: the pipeline installs its answer when Django starts.
_war_room_probe: Callable[[int], bool] | None = None


def install_war_room_probe(probe: Callable[[int], bool] | None) -> None:
    global _war_room_probe
    _war_room_probe = probe


def _has_war_room(incident_id: int) -> bool:
    return _war_room_probe is not None and _war_room_probe(incident_id)


def slack_target() -> tuple[ResolvedTarget, str] | None:
    """The notification channel as a target (webhook or bot), or None when Slack is not set up."""
    if settings.SLACK_WEBHOOK_URL:
        return ResolvedTarget("slack-notifications", "slack", settings.SLACK_WEBHOOK_URL), ""
    if settings.SLACK_BOT_TOKEN and settings.SLACK_CHANNEL:
        # The variable's name, not its value: the token is read when the post is made.
        bot = ResolvedTarget(
            "slack-notifications",
            "slack",
            settings.SLACK_API_URL,
            secret_env="SLACK_BOT_TOKEN",  # noqa: S106
        )
        return bot, settings.SLACK_CHANNEL
    return None


def decision_message(
    *,
    request: Any,
    event: str,
    actor: str,
    reason: str = "",
    given: int | None = None,
    needed: int | None = None,
    succeeded: bool | None = None,
    summary: str = "",
) -> str:
    """One line a person can act on: what, which incident, who decided, who asked.

    `given` of `needed` approvals are as of the decision: counted when the post leaves,
    a second approval in between would read as still waiting while the action runs.
    `event` is approved, approval_recorded, rejected, expired, awaiting_approval
    (`reason` says why) or finished (`succeeded`, `summary`: the run's result).
    """
    what, where = _what(request), _where(request.incident)
    asked = request.requester_label
    if event == "awaiting_approval":
        text = f"{what} for {where} awaits approval: {reason}."
    elif event == "finished":
        verb = "succeeded" if succeeded else "failed"
        text = f"{what} for {where} ran and {verb}: {summary}"
    elif event == "approved":
        text = f"{actor} approved {what} for {where}; it runs now."
    elif event == "approval_recorded":
        if given is None or needed is None:  # queued before decisions carried their count
            given, needed = current_approvals(request).count(), approvals_required(request)
        text = (
            f"{actor} approved {what} for {where} ({given} of {needed}); "
            "it waits for another approver."
        )
    elif event == "rejected":
        text = f"{actor} rejected {what} for {where}: {reason}"
    else:
        text = (
            f"The approval request for {what} for {where} expired unanswered; ask again to run it."
        )
    return f"{text} (asked by {asked})"


def _what(request: Any) -> str:
    return f"{request.step_id} ({request.action})" + (
        f" on {request.target}" if request.target else ""
    )


def _where(incident: Any) -> str:
    return f"incident #{incident.pk} [{incident.severity}] {incident.title}"


def proposal_message(*, proposed: list[tuple[Any, str, str]]) -> str:
    """The actions a runbook proposed, as (request, status, reason) when proposed: which
    wait for approval and why, which a responder may run, which were blocked."""
    incident = proposed[0][0].incident
    n = len(proposed)
    lines = [f"{n} action{'s' if n != 1 else ''} proposed for {_where(incident)}:"]
    for request, status, reason in proposed:
        if status == ActionStatus.AWAITING_APPROVAL:
            lines.append(f"• {_what(request)} awaits approval: {reason}")
        elif status == ActionStatus.BLOCKED:
            lines.append(f"• {_what(request)} is blocked: {reason}")
        else:
            lines.append(f"• {_what(request)} may be run by a responder from the incident page")
    return "\n".join(lines)


# --- the war room: approval news as replies under the incident card -----------------


@dataclass(frozen=True)
class Notice:
    """Approval news from a timeline row: `render` is kept with the queued post and
    made into words when it is sent; None when another notice already says it."""

    render: dict | None


# The approval that queued the run says "it runs now": its `queued` row adds nothing.
_ALREADY_TOLD = frozenset({"queued"})


def war_room_notice(kind: str, payload: dict) -> Notice | None:
    """The approval news in a timeline row, or None when it is not approval news."""
    if kind == TimelineKind.ACTION_PROPOSED:
        actions = [a for a in payload.get("actions", []) if isinstance(a, dict) and "id" in a]
        return Notice({"proposed": actions}) if actions else None
    if kind == TimelineKind.APPROVAL:
        if payload.get("decision") == Decision.REJECT:
            event = "rejected"
        elif (payload.get("approvals") or 0) < (payload.get("required") or 0):
            event = "approval_recorded"
        else:
            event = "approved"
        return Notice(
            {
                "action_request_id": payload["action_request_id"],
                "event": event,
                "actor": payload.get("approver", ""),
                "reason": payload.get("reason", ""),
                "given": payload.get("approvals"),
                "needed": payload.get("required"),
            }
        )
    if kind != TimelineKind.ACTION_STATUS:
        return None
    change, request_id = payload.get("change"), payload.get("action_request_id")
    if change in _ALREADY_TOLD:
        return Notice(None)
    if change == "expired":
        return Notice({"action_request_id": request_id, "event": "expired", "actor": ""})
    if change == "needs_approval":
        return Notice(
            {
                "action_request_id": request_id,
                "event": "awaiting_approval",
                "actor": "",
                "reason": payload.get("reason", ""),
            }
        )
    if change == "finished" and not payload.get("late"):
        return Notice(
            {
                "action_request_id": request_id,
                "event": "finished",
                "actor": "",
                "succeeded": bool(payload.get("succeeded")),
                "summary": str(payload.get("summary", ""))[:500],
            }
        )
    return None


def war_room_message(render: dict) -> str | None:
    """The words of a notice as it is posted; None when its requests are gone."""
    related = ActionRequest.objects.select_related("incident", "runbook", "requested_by")
    if "proposed" in render:
        actions = render["proposed"]
        found = related.in_bulk([a["id"] for a in actions])
        proposed = [
            (found[a["id"]], a.get("status", ""), a.get("reason", ""))
            for a in actions
            if a["id"] in found
        ]
        return proposal_message(proposed=proposed) if proposed else None
    fields = {k: v for k, v in render.items() if k != "action_request_id"}
    request = related.filter(pk=render.get("action_request_id")).first()
    return decision_message(request=request, **fields) if request else None


def decision_notify_queue(**payload: Any) -> None:
    """After commit: queue the Slack post when Slack is configured (the timeline has it
    anyway) and the incident has no war room (its thread has the news already)."""
    if slack_target() is None:
        return
    if _war_room_probe is not None:
        incident_id = (
            ActionRequest.objects.filter(pk=payload.get("action_request_id"))
            .values_list("incident_id", flat=True)
            .first()
        )
        if incident_id is not None and _has_war_room(incident_id):
            return
    try:
        current_app.tasks[NOTIFY_DECISION_TASK].delay(**payload)
    except Exception:  # a broker hiccup must not turn a recorded decision into an error page
        logger.exception("could not queue the decision notification %s", payload)


def decision_notify(
    *,
    action_request_id: int,
    event: str,
    actor: str,
    reason: str = "",
    given: int | None = None,
    needed: int | None = None,
) -> bool:
    """Post the decision to Slack and record the outcome on the timeline; True if posted."""
    configured = slack_target()
    if configured is None:
        return False
    target, channel = configured
    request = ActionRequest.objects.select_related("incident", "runbook", "requested_by").get(
        pk=action_request_id
    )
    message = decision_message(
        request=request, event=event, actor=actor, reason=reason, given=given, needed=needed
    )
    deadline = time.monotonic() + SLACK_DEADLINE_SECONDS
    try:
        if channel:
            slack.post_message(target, message, channel=channel, deadline=deadline)
        else:
            slack.post_webhook(target, message, deadline=deadline)
    except (StepError, StepBlocked, StepTimeout) as exc:
        delivered, error = False, str(exc)
    else:
        delivered, error = True, ""
    decision_notice_event(
        incident=request.incident_id,
        action_request_id=request.pk,
        step_id=request.step_id,
        event=event,
        delivered=delivered,
        text=message if delivered else "",
        error=error,
    )
    return delivered
