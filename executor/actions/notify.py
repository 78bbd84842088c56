"""Notifications: Slack when a Slack target is configured, the incident timeline otherwise."""

from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import slack
from executor.registry import register
from executor.results import StepBlocked, StepResult


def _one_line(text: str) -> str:
    return " ".join(text.split())


@register(
    name="alert.notify",
    kind=StepKind.ACTION,
    safety=Safety.REVERSIBLE,
    description="Tell people: post a message to Slack, or to the incident timeline when Slack "
    "is not configured.",
    params={
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": 2000},
            "channel": {"type": "string", "pattern": r"^[#@]?[a-z0-9][a-z0-9_.\-]{0,79}$(?!\n)"},
        },
    },
    targets=("slack", "timeline"),
    normalize=seed_params.notify_channel,
)
class Notify:
    def plan(self, params: dict, target: Any) -> str:
        message = _one_line(params.get("message", ""))
        channel = params.get("channel") or ""
        if target is None:
            return f"Would post: {message}"
        if target.kind == "timeline":
            return f"Would record on the incident timeline: {message}"
        if target.secret:
            return f"Would post to Slack channel {channel or '(none given)'} via {target.name}: {message}"
        return f"Would post to Slack via the incoming webhook of {target.name}: {message}"

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        message = params.get("message", "")
        if not isinstance(message, str) or not message.strip():
            raise StepBlocked("an empty message is not sent")
        channel = params.get("channel") or (getattr(target, "options", None) or {}).get(
            "channel", ""
        )
        if target is None or target.kind not in ("slack", "timeline"):
            raise StepBlocked("this step needs a slack or timeline target")
        if target.kind == "timeline":
            # No network: the caller writes the timeline event from this result.
            return StepResult(
                outcome="ok",
                summary=f"Recorded on the incident timeline: {_one_line(message)}",
                data={"via": "timeline", "message": message, "channel": channel or None},
                text=message,
            )
        if target.secret:
            sent = slack.post_message(target, message, channel=channel, deadline=deadline)
            where = f"Slack {sent.get('channel') or channel}"
        else:
            sent = slack.post_webhook(target, message, deadline=deadline)
            where = f"Slack ({target.name})"
            if channel:
                # Incoming webhooks post to the channel they were created for.
                sent["channel_ignored"] = channel
        return StepResult(
            outcome="ok",
            summary=f"Posted to {where}: {_one_line(message)[:200]}",
            data={**sent, "message": message},
            text=message,
        )
