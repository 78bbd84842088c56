"""Tell the requester and the incident's channel what became of an approval request.

The decision itself is always on the incident timeline (the services record it in
the same transaction). Slack is told too when it is configured: an incoming webhook
(SLACK_WEBHOOK_URL) or a bot token with a channel (SLACK_BOT_TOKEN, SLACK_CHANNEL).
The post happens on the worker after commit, so a slow Slack never holds a click,
and its outcome is itself recorded on the timeline.
"""

import logging
import time
from typing import Any

from celery import current_app
from django.conf import settings

from incidents.events import decision_notice_event

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
) -> str:
    """One line a person can act on: what, which incident, who decided, who asked.

    `given` of `needed` approvals are as of the decision: counted when the post leaves,
    a second approval in between would read as still waiting while the action runs.
    """
    incident = request.incident
    what = f"{request.step_id} ({request.action})" + (
        f" on {request.target}" if request.target else ""
    )
    where = f"incident #{incident.pk} [{incident.severity}] {incident.title}"
    asked = request.requester_label
    if event == "approved":
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
            f"The approval request for {what} on {where} expired unanswered; ask again to run it."
        )
    return f"{text} (asked by {asked})"


def decision_notify_queue(**payload: Any) -> None:
    """After commit: queue the Slack post when Slack is configured (the timeline has it anyway)."""
    if slack_target() is None:
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
