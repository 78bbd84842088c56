"""Slack connector: an incoming webhook, or chat.postMessage with a bot token.

The webhook URL is itself a secret, so messages name the target, never its URL.
Message text is escaped (&, <, >) so a runbook cannot smuggle in mentions such as
<!channel> or links. A 429 is honoured when its Retry-After fits in the deadline.
"""

import json
from typing import Any

from executor.results import StepBlocked, StepError

from . import http


def escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_payload(message: str) -> dict:
    text = escape(message)
    return {
        "text": text,  # the fallback shown in notifications
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def post_webhook(target: Any, message: str, *, deadline: float) -> dict:
    url = http.target_url(target)
    what = f"Slack webhook {target.name}"
    reply, attempts = http.request_retrying(
        "POST",
        url,
        deadline=deadline,
        what=what,
        limited_by="Slack",
        scrub=target.scrub,
        json=message_payload(message),
    )
    status, body = reply.status, reply.text
    if not 200 <= status < 300:
        raise StepError(f"{what} answered {status}: {body.strip()[:100]}")
    return {"via": "webhook", "status": status, "attempts": attempts, "answer": body.strip()[:100]}


def post_message(target: Any, message: str, *, channel: str, deadline: float) -> dict:
    """chat.postMessage at target.url (the API base, e.g. https://slack.com/api)."""
    token = target.secret
    if not token:
        raise StepBlocked(f"Slack target {target.name} has no bot token")
    if not channel:
        raise StepBlocked("a channel is needed to post with a bot token")
    url = http.target_url(target).rstrip("/") + "/chat.postMessage"
    what = f"Slack target {target.name}"
    payload = {"channel": channel, **message_payload(message), "unfurl_links": False}
    reply, attempts = http.request_retrying(
        "POST",
        url,
        deadline=deadline,
        what=what,
        limited_by="Slack",
        scrub=target.scrub,
        json=payload,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
        },
    )
    status, body = reply.status, reply.text
    if not 200 <= status < 300:
        raise StepError(f"{what}: chat.postMessage answered {status}: {body.strip()[:100]}")
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise StepError(f"{what}: chat.postMessage answered with something not JSON") from exc
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = answer.get("error", "unknown error") if isinstance(answer, dict) else "bad answer"
        raise StepError(f"{what}: chat.postMessage failed: {str(error)[:100]}")
    return {
        "via": "chat.postMessage",
        "status": status,
        "attempts": attempts,
        "channel": answer.get("channel"),
        "ts": answer.get("ts"),
        "warning": answer.get("warning"),
    }
