"""Generic JSON webhook: one alert object, or a list of them (at most the payload limit)."""

from typing import Any

from django.conf import settings

from .base import (
    MAX_ANNOTATION_VALUE,
    MAX_DESCRIPTION,
    MAX_SERVICE,
    MAX_TITLE,
    ParsedAlert,
    ParseResult,
    PayloadError,
    as_object,
    bounded_raw,
    key,
    opt_str,
    parse_time,
    raw_max_bytes,
    req_str,
    safe_url,
    sha256_json,
    string_map,
)
from .registry import register_parser

STATUSES = {"firing", "resolved", "acknowledged"}


def _one(item: Any, path: str, default_service: str, raw_limit: int) -> ParsedAlert:
    body = as_object(item, path or "the payload", required=True)
    prefix = f"{path}." if path else ""
    title = req_str(body, "title", prefix, MAX_TITLE)
    status = opt_str(body, "status", prefix, 20) or "firing"
    if status not in STATUSES:
        raise PayloadError(f"{prefix}status must be firing, resolved or acknowledged")
    severity = body.get("severity")
    if severity is not None and not isinstance(severity, str | int):
        raise PayloadError(f"{prefix}severity must be a string")
    service = opt_str(body, "service", prefix, MAX_SERVICE) or default_service
    labels = string_map(body.get("labels"), f"{prefix}labels")
    annotations = string_map(
        body.get("annotations"), f"{prefix}annotations", value_limit=MAX_ANNOTATION_VALUE
    )
    source_url = opt_str(body, "source_url", prefix, 4000)
    if source_url and not safe_url(source_url):
        raise PayloadError(f"{prefix}source_url must be an http(s) URL")
    dedup = opt_str(body, "dedup_key", prefix, 100_000)
    # Without a key, the same title/service/labels is the same alert.
    dedup = key(dedup) if dedup.strip() else "auto:" + sha256_json([title, service, labels])[:32]
    timestamp = parse_time(body.get("timestamp"), f"{prefix}timestamp")
    return ParsedAlert(
        dedup_key=dedup,
        status=status,
        title=title,
        source_severity=str(severity or "")[:50],
        description=opt_str(body, "description", prefix, MAX_DESCRIPTION),
        service=service[:MAX_SERVICE],
        labels=labels,
        annotations=annotations,
        source_url=source_url,
        starts_at=timestamp if status == "firing" else None,
        ends_at=timestamp if status == "resolved" else None,
        group_key=key(opt_str(body, "group_key", prefix, 100_000)),
        occurrence=timestamp.isoformat() if timestamp else "",
        raw=bounded_raw(body, raw_limit),
    )


@register_parser("generic")
def parse_generic(payload: Any, *, default_service: str = "") -> ParseResult:
    raw_limit = raw_max_bytes()
    if isinstance(payload, list):
        limit = settings.INGEST_MAX_ALERTS_PER_PAYLOAD
        if len(payload) > limit:
            raise PayloadError(f"{len(payload)} alerts in one payload; the limit is {limit}")
        alerts = [_one(x, f"[{i}]", default_service, raw_limit) for i, x in enumerate(payload)]
    else:
        alerts = [_one(payload, "", default_service, raw_limit)]
    return ParseResult(alerts=alerts, answer={"dedup_keys": [a.dedup_key for a in alerts]})
