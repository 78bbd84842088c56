"""An alert row from a parsed alert: a new one's columns, or a repeat applied in place."""

from datetime import datetime
from typing import Any

from incidents.choices import AlertStatus
from incidents.models import Alert, AlertSource

from .base import ParsedAlert

ACTIVE = (AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED)

# What a repeat may change (bulk_update writes these columns).
UPDATE_FIELDS = [
    "status",
    "severity",
    "source_severity",
    "title",
    "description",
    "service",
    "labels",
    "annotations",
    "source_url",
    "starts_at",
    "ends_at",
    "last_seen",
    "fired_at",
    "count",
    "group_key",
    "fingerprint",
    "content_hash",
    "raw",
]


def new_values(
    source: AlertSource, p: ParsedAlert, severity: str, digest: str, now: datetime
) -> dict[str, Any]:
    """A new alert's columns by attname: every one the direct insert writes (no model
    instance on that path), and Alert(**values) for the general path."""
    return dict(
        source_id=source.pk,
        incident_id=None,
        dedup_key=p.dedup_key,
        fingerprint=p.fingerprint,
        content_hash=digest,
        status=p.status,
        severity=severity,
        source_severity=p.source_severity,
        title=p.title,
        description=p.description,
        service=p.service,
        labels=p.labels,
        annotations=p.annotations,
        source_url=p.source_url,
        starts_at=p.starts_at,
        ends_at=(p.ends_at or now) if p.status == AlertStatus.RESOLVED else None,
        first_seen=now,
        last_seen=now,
        fired_at=now if p.status in ACTIVE else None,
        count=1,
        group_key=p.group_key,
        raw=p.raw,
    )


def apply_repeat(row: Alert, p: ParsedAlert, severity: str, digest: str, now: datetime) -> None:
    """A repeat of a known alert: update it in place, counting new firing occurrences."""
    was = row.status
    row.status = p.status
    if not p.update_only:
        row.severity = severity
        row.source_severity = p.source_severity
        row.title = p.title
        row.description = p.description
        row.service = p.service
        row.labels = p.labels
        row.annotations = p.annotations
        row.source_url = p.source_url
        row.starts_at = p.starts_at or row.starts_at
        row.group_key = p.group_key
        row.fingerprint = p.fingerprint or row.fingerprint
        row.raw = p.raw
    if row.status == AlertStatus.RESOLVED:
        row.ends_at = p.ends_at or now
    else:
        row.ends_at = None
        if was == AlertStatus.RESOLVED or row.fired_at is None:
            row.fired_at = now  # a new firing cycle: its suspend window starts now
        if row.status == AlertStatus.FIRING:
            row.count += 1
    row.content_hash = digest
    row.last_seen = now
