"""PagerDuty Events API v2 (`/v2/enqueue`): trigger, acknowledge, resolve by dedup_key."""

import uuid
from typing import Any

from .base import (
    MAX_DESCRIPTION,
    MAX_LABEL_VALUE,
    MAX_SERVICE,
    ParsedAlert,
    ParseResult,
    PayloadError,
    as_object,
    bounded_raw,
    clip,
    key,
    opt_str,
    parse_time,
    raw_max_bytes,
    req_str,
    safe_url,
)
from .registry import register_parser

ACTIONS = {"trigger": "firing", "acknowledge": "acknowledged", "resolve": "resolved"}
SEVERITIES = {"critical", "error", "warning", "info"}


@register_parser("pagerduty")
def parse_pagerduty(payload: Any, *, default_service: str = "") -> ParseResult:
    body = as_object(payload, "the event", required=True)
    req_str(body, "routing_key", "", 100)
    action = opt_str(body, "event_action", "", 20)
    if action not in ACTIONS:
        raise PayloadError("event_action must be trigger, acknowledge or resolve")
    dedup_key = key(opt_str(body, "dedup_key", "", 100_000))
    raw_limit = raw_max_bytes()

    if action != "trigger":
        if not dedup_key:
            raise PayloadError(f"dedup_key is required to {action}")
        alert = ParsedAlert(
            dedup_key=dedup_key,
            status=ACTIONS[action],
            title="",
            update_only=True,
            raw=bounded_raw(body, raw_limit),
        )
        return ParseResult(alerts=[alert], answer={"dedup_key": dedup_key})

    data = as_object(body.get("payload"), "payload", required=True)
    summary = req_str(data, "summary", "payload.", 1024)
    source = req_str(data, "source", "payload.", 255)
    severity = opt_str(data, "severity", "payload.", 20)
    if severity not in SEVERITIES:
        raise PayloadError("payload.severity must be critical, error, warning or info")
    timestamp = parse_time(data.get("timestamp"), "payload.timestamp")
    component = opt_str(data, "component", "payload.", MAX_LABEL_VALUE)
    group = opt_str(data, "group", "payload.", MAX_LABEL_VALUE)
    klass = opt_str(data, "class", "payload.", MAX_LABEL_VALUE)
    details = data.get("custom_details")

    links = body.get("links") or []
    images = body.get("images") or []
    if not isinstance(links, list) or not all(isinstance(x, dict) for x in links):
        raise PayloadError("links must be a list of objects with href and text")
    if not isinstance(images, list) or not all(isinstance(x, dict) for x in images):
        raise PayloadError("images must be a list of objects with src, href and alt")
    hrefs = [safe_url(x.get("href")) for x in links[:20]]
    annotations = {f"link_{i}": h for i, h in enumerate(hrefs) if h}
    annotations.update(
        {f"image_{i}": u for i, x in enumerate(images[:10]) if (u := safe_url(x.get("src")))}
    )

    # PagerDuty generates the key when the sender gives none, and returns it.
    dedup_key = dedup_key or uuid.uuid4().hex
    labels = {
        k: v
        for k, v in (
            ("source", source),
            ("component", component),
            ("group", group),
            ("class", klass),
        )
        if v
    }
    alert = ParsedAlert(
        dedup_key=dedup_key,
        status="firing",
        title=clip(summary, 200),
        source_severity=severity,
        description=clip(details, MAX_DESCRIPTION) if details is not None else "",
        service=clip(component or group or default_service, MAX_SERVICE),
        labels=labels,
        annotations=annotations,
        source_url=next((h for h in hrefs if h), ""),
        starts_at=timestamp,
        occurrence=timestamp.isoformat() if timestamp else "",
        raw=bounded_raw(body, raw_limit),
    )
    return ParseResult(alerts=[alert], answer={"dedup_key": dedup_key})
