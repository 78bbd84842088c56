"""Change deliveries: what every change parser produces, their registry, and storing them.

A change source's delivery records ChangeEvents (deploys, config and flag changes,
scales, restarts, rollbacks) instead of alerts. Like alerts, a delivery is parsed in
full before anything is stored: a broken one stores nothing.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any

from django.db import transaction

from incidents.choices import ChangeKind, ChangeStatus
from incidents.models import AlertSource, ChangeEvent
from incidents.storable import clean_payload

from .base import PayloadError

MAX_CHANGES_PER_PAYLOAD = 100


@dataclass
class ParsedChange:
    service: str
    kind: str
    external_id: str
    started_at: datetime
    status: str = ChangeStatus.SUCCEEDED
    version: str = ""
    previous_version: str = ""
    author: str = ""
    link: str = ""
    description: str = ""
    finished_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


# (payload, headers, default_service) -> the changes it holds; [] for deliveries we ignore.
ChangeParser = Callable[[Any, Mapping[str, str], str], list[ParsedChange]]
CHANGE_PARSERS: dict[str, ChangeParser] = {}
_FAMILIES = ("github", "change_json")


def register_change_parser(kind: str) -> Callable[[ChangeParser], ChangeParser]:
    def decorator(fn: ChangeParser) -> ChangeParser:
        if kind in CHANGE_PARSERS:
            raise ValueError(f"a change parser for {kind!r} is already registered")
        CHANGE_PARSERS[kind] = fn
        return fn

    return decorator


def load_change_parsers() -> None:
    for family in _FAMILIES:
        import_module(f"{__package__}.{family}")


def parse_changes(
    kind: str, payload: Any, headers: Mapping[str, str], *, default_service: str = ""
) -> list[ParsedChange]:
    parser = CHANGE_PARSERS.get(kind)
    if parser is None:
        raise PayloadError(f"no change parser for source kind {kind!r}")
    changes = parser(payload, headers, default_service)
    if len(changes) > MAX_CHANGES_PER_PAYLOAD:
        limit = MAX_CHANGES_PER_PAYLOAD
        raise PayloadError(f"{len(changes)} changes in one payload; the limit is {limit}")
    for change in changes:
        if change.kind not in ChangeKind.values:
            raise PayloadError(f"kind must be one of {', '.join(ChangeKind.values)}")
        if not change.service.strip():
            raise PayloadError("service is required")
    return changes


def previous_version_of(service: str, before: datetime, version: str) -> str:
    """The version the service ran before this deploy: the last successful deploy or
    rollback to another version, so a rollback knows where to go back to."""
    earlier = (
        ChangeEvent.objects.filter(
            service=service,
            kind__in=[ChangeKind.DEPLOY, ChangeKind.ROLLBACK],
            status=ChangeStatus.SUCCEEDED,
            started_at__lt=before,
        )
        .exclude(version__in=["", version])
        .order_by("-started_at", "-id")
        .values_list("version", flat=True)
        .first()
    )
    return earlier or ""


def change_record(*, origin: str, change: ParsedChange) -> ChangeEvent:
    """Store one change; a redelivery of the same (origin, id) updates it in place."""
    previous = change.previous_version
    if not previous and change.kind in (ChangeKind.DEPLOY, ChangeKind.ROLLBACK):
        previous = previous_version_of(change.service, change.started_at, change.version)
    event, _ = ChangeEvent.objects.update_or_create(
        origin=origin[:60],
        external_id=change.external_id[:255],
        defaults={
            "service": change.service[:100],
            "kind": change.kind,
            "status": change.status,
            "version": change.version[:255],
            "previous_version": previous[:255],
            "author": change.author[:200],
            "link": change.link[:2000],
            "description": change.description[:500],
            "started_at": change.started_at,
            "finished_at": change.finished_at,
            "raw": clean_payload(change.raw),
        },
    )
    return event


@dataclass
class ChangeIngestResult:
    received: int
    ids: list[int]


def change_ingest(
    *, source: AlertSource, payload: Any, headers: Mapping[str, str]
) -> ChangeIngestResult:
    """Parse a change delivery and store its changes in one transaction (all or nothing)."""
    changes = parse_changes(
        source.kind, clean_payload(payload), headers, default_service=source.default_service
    )
    with transaction.atomic():
        ids = [change_record(origin=source.slug, change=c).pk for c in changes]
    return ChangeIngestResult(received=len(changes), ids=ids)
