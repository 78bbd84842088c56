"""Slack connector: an incoming webhook, or chat.postMessage with a bot token.

The webhook URL is itself a secret, so messages name the target, never its URL.
Message text is escaped (&, <, >) so a runbook cannot smuggle in mentions such as
<!channel> or links. A 429 is honoured when its Retry-After fits in the deadline.
"""

import json
import time
from typing import Any

from executor.results import StepBlocked, StepError

from . import http

MAX_ATTEMPTS = 3


def escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_payload(message: str) -> dict:
    text = escape(message)
    return {
        "text": text,  # the fallback shown in notifications
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _post(
    url: str, payload: dict, *, headers: dict, deadline: float, what: str
) -> tuple[int, str, int]:
    """POST, waiting out 429s that fit in the deadline; (status, body, attempts)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        status, resp_headers, body = http.post_json(
            url, payload, headers=headers, deadline=deadline, what=what
        )
        if status != 429:
            return status, body, attempt
        wait = _retry_after(resp_headers)
        left = deadline - time.monotonic()
        if attempt == MAX_ATTEMPTS or wait >= left:
            raise StepError(
                f"{what}: rate limited by Slack (Retry-After {wait:g}s, "
                f"{max(left, 0):.1f}s left before the deadline)"
            )
        # Slack asks us to wait this long before trying again; it is the only sleep here.
        time.sleep(wait)
    raise AssertionError("unreachable")


def post_webhook(target: Any, message: str, *, deadline: float) -> dict:
    url = http.target_url(target)
    what = f"Slack webhook {target.name}"
    status, body, attempts = _post(
        url, message_payload(message), headers={}, deadline=deadline, what=what
    )
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
    status, body, attempts = _post(
        url,
        payload,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
        },
        deadline=deadline,
        what=what,
    )
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
