"""Prometheus Alertmanager webhook, payload version 4: one notification per alert group."""

from typing import Any

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
    clip,
    key,
    labels_fingerprint,
    opt_str,
    parse_time,
    raw_max_bytes,
    safe_url,
    string_map,
)
from .registry import register_parser

STATUSES = {"firing", "resolved"}


@register_parser("alertmanager")
def parse_alertmanager(payload: Any, *, default_service: str = "") -> ParseResult:
    body = as_object(payload, "the payload", required=True)
    version = body.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError(f"version {clip(version, 20)!r} is not supported; Alertmanager sends 4")
    group_key = key(opt_str(body, "groupKey", "", 100_000))
    group_status = opt_str(body, "status", "", 20)
    if group_status and group_status not in STATUSES:
        raise PayloadError("status must be firing or resolved")
    receiver = opt_str(body, "receiver", "", 200)
    external_url = safe_url(body.get("externalURL"))
    truncated = body.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("truncatedAlerts must be a non-negative integer")
    group_labels = string_map(body.get("groupLabels"), "groupLabels")
    common_labels = string_map(body.get("commonLabels"), "commonLabels")
    common_annotations = string_map(
        body.get("commonAnnotations"), "commonAnnotations", value_limit=MAX_ANNOTATION_VALUE
    )
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    raw_limit = raw_max_bytes()

    parsed: list[ParsedAlert] = []
    for i, item in enumerate(alerts):
        path = f"alerts[{i}]."
        alert = as_object(item, f"alerts[{i}]", required=True)
        status = opt_str(alert, "status", path, 20)
        if status not in STATUSES:
            raise PayloadError(f"{path}status must be firing or resolved")
        labels = string_map(alert.get("labels"), f"{path}labels")
        if not labels:
            raise PayloadError(f"{path}labels must name the alert (at least alertname)")
        annotations = string_map(
            alert.get("annotations"), f"{path}annotations", value_limit=MAX_ANNOTATION_VALUE
        )
        fingerprint = opt_str(alert, "fingerprint", path, 64) or labels_fingerprint(labels)
        starts_at = parse_time(alert.get("startsAt"), f"{path}startsAt")
        ends_at = parse_time(alert.get("endsAt"), f"{path}endsAt")
        title = (
            annotations.get("summary")
            or annotations.get("title")
            or labels.get("alertname")
            or "Alertmanager alert"
        )
        description = annotations.get("description") or annotations.get("message") or ""
        service = labels.get("service") or labels.get("app") or default_service
        parsed.append(
            ParsedAlert(
                dedup_key=key(fingerprint),
                fingerprint=clip(fingerprint, 64),
                status=status,
                title=clip(title, MAX_TITLE),
                source_severity=clip(labels.get("severity", ""), 50),
                description=clip(description, MAX_DESCRIPTION),
                service=clip(service, MAX_SERVICE),
                labels=labels,
                annotations=annotations,
                source_url=safe_url(alert.get("generatorURL")) or external_url,
                starts_at=starts_at,
                # Firing alerts carry a future endsAt (the resolve timeout): not an end.
                ends_at=ends_at if status == "resolved" else None,
                group_key=group_key,
                raw=bounded_raw(
                    {
                        "alert": alert,
                        "receiver": receiver,
                        "groupLabels": group_labels,
                        "commonLabels": common_labels,
                        "commonAnnotations": common_annotations,
                        "truncatedAlerts": truncated,
                    },
                    raw_limit,
                ),
            )
        )
    return ParseResult(alerts=parsed, answer={"truncated_alerts": truncated})
