"""Datadog webhook integration, with the payload template given in docs/alert-sources.md.

Datadog fills `$VARIABLES` into a template the user pastes, so every value arrives as a
string and a variable that does not apply may arrive empty or literally unreplaced.
"""

import re
from typing import Any

from .base import (
    MAX_DESCRIPTION,
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_SERVICE,
    MAX_TITLE,
    ParsedAlert,
    ParseResult,
    PayloadError,
    as_object,
    bounded_raw,
    clip,
    key,
    parse_time,
    raw_max_bytes,
    safe_url,
)
from .registry import register_parser

RESOLVED_TRANSITIONS = {"recovered"}
FIRING_TRANSITIONS = {
    "triggered",
    "re-triggered",
    "warn",
    "re-warn",
    "renotify",
    "no data",
    "re-no data",
}
_UNREPLACED = re.compile(r"^\$[A-Z_]+$")


def _value(body: dict, name: str, limit: int = MAX_LABEL_VALUE) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise PayloadError(f"{name} must be a string")
    text = clip(value, limit).strip()
    return "" if _UNREPLACED.match(text) else text


def _tags(text: str) -> dict[str, str]:
    """`$TAGS` / `$ALERT_SCOPE`: "env:prod,service:checkout,role:db" → a bounded mapping."""
    out: dict[str, str] = {}
    for part in text.split(",")[: MAX_LABELS * 2]:
        name, _, val = part.strip().partition(":")
        if name and len(out) < MAX_LABELS:
            out.setdefault(clip(name, MAX_LABEL_KEY), clip(val, MAX_LABEL_VALUE))
    return out


@register_parser("datadog")
def parse_datadog(payload: Any, *, default_service: str = "") -> ParseResult:
    body = as_object(payload, "the payload", required=True)
    cycle = _value(body, "alert_cycle_key", 100_000)
    monitor = _value(body, "alert_id", 100)
    scope = _value(body, "alert_scope", 2000)
    aggreg = _value(body, "aggreg_key", 1000)
    dedup = cycle or (f"{monitor}:{scope}" if monitor else "") or aggreg
    if not dedup:
        raise PayloadError("alert_cycle_key is required ($ALERT_CYCLE_KEY in the template)")

    transition = _value(body, "alert_transition", 50)
    alert_type = _value(body, "alert_type", 50).lower()
    if transition:
        if transition.lower() in RESOLVED_TRANSITIONS:
            status = "resolved"
        elif transition.lower() in FIRING_TRANSITIONS:
            status = "firing"
        else:
            raise PayloadError(f"alert_transition {transition!r} is not one Datadog sends")
    else:
        status = "resolved" if alert_type == "success" else "firing"

    title = _value(body, "alert_title", MAX_TITLE) or _value(body, "title", MAX_TITLE)
    if not title:
        raise PayloadError("alert_title or title is required")
    priority = _value(body, "alert_priority", 10).upper()
    tags = _tags(_value(body, "tags", 10_000))
    scope_tags = _tags(scope)
    labels = {**scope_tags, **tags}
    for name in ("alert_id", "alert_metric", "hostname", "event_type", "org_id"):
        val = _value(body, name)
        if val and len(labels) < MAX_LABELS:
            labels[name] = val
    org = body.get("org")
    org_name = clip(org.get("name"), MAX_LABEL_VALUE) if isinstance(org, dict) else ""
    if org_name and len(labels) < MAX_LABELS:
        labels["org"] = org_name
    annotations = {
        k: v
        for k in ("alert_status", "alert_query", "alert_type", "alert_transition")
        if (v := _value(body, k, 4000))
    }
    if snapshot := safe_url(_value(body, "snapshot", 2000)):
        annotations["snapshot"] = snapshot
    when = _value(body, "last_updated", 40) or _value(body, "date", 40)
    occurred = parse_time(when, "last_updated") if when else None
    started = parse_time(_value(body, "date", 40), "date") if body.get("date") else None
    return ParseResult(
        alerts=[
            ParsedAlert(
                dedup_key=key(dedup),
                status=status,
                title=title,
                source_severity=priority or alert_type,
                description=_value(body, "body", MAX_DESCRIPTION)
                or _value(body, "text_only_msg", MAX_DESCRIPTION),
                service=clip(
                    tags.get("service") or scope_tags.get("service") or default_service,
                    MAX_SERVICE,
                ),
                labels=labels,
                annotations=annotations,
                source_url=safe_url(_value(body, "link", 2000)),
                starts_at=started if status == "firing" else None,
                ends_at=occurred if status == "resolved" else None,
                # One monitor's alerts (one per scope in a multi-alert) group together.
                group_key=key(f"monitor:{monitor}") if monitor else "",
                occurrence=f"{transition}|{when}|{_value(body, 'id', 100)}",
                raw=bounded_raw(body, raw_max_bytes()),
            )
        ],
        answer={"dedup_key": key(dedup)},
    )
