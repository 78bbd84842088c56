"""Generic change JSON (docs/changes.md): one change object, or a list of them."""

from collections.abc import Mapping
from typing import Any

from incidents.choices import ChangeKind, ChangeStatus

from .base import (
    MAX_SERVICE,
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
)
from .changes import MAX_CHANGES_PER_PAYLOAD, ParsedChange, register_change_parser


def _one(item: Any, path: str, default_service: str) -> ParsedChange:
    body = as_object(item, path or "the payload", required=True)
    prefix = f"{path}." if path else ""
    kind = req_str(body, "kind", prefix, 20)
    if kind not in ChangeKind.values:
        raise PayloadError(f"{prefix}kind must be one of {', '.join(ChangeKind.values)}")
    status = opt_str(body, "status", prefix, 20) or ChangeStatus.SUCCEEDED
    if status not in ChangeStatus.values:
        raise PayloadError(f"{prefix}status must be one of {', '.join(ChangeStatus.values)}")
    service = opt_str(body, "service", prefix, MAX_SERVICE) or default_service
    if not service.strip():
        raise PayloadError(f"{prefix}service is required")
    started = parse_time(body.get("started_at"), f"{prefix}started_at")
    if started is None:
        raise PayloadError(f"{prefix}started_at is required")
    finished = parse_time(body.get("finished_at"), f"{prefix}finished_at")
    link = opt_str(body, "link", prefix, 2000)
    if link and not safe_url(link):
        raise PayloadError(f"{prefix}link must be an http(s) URL")
    version = opt_str(body, "version", prefix, 255)
    given_id = opt_str(body, "id", prefix, 100_000)
    # Without an id, the same service/kind/version/start is the same change.
    external = (
        key(given_id)
        if given_id.strip()
        else "auto:" + sha256_json([service, kind, version, started.isoformat()])[:32]
    )
    return ParsedChange(
        service=service.strip(),
        kind=kind,
        status=status,
        external_id=external,
        version=version,
        previous_version=opt_str(body, "previous_version", prefix, 255),
        author=opt_str(body, "author", prefix, 200),
        link=link,
        description=opt_str(body, "description", prefix, 500),
        started_at=started,
        finished_at=finished,
        raw=bounded_raw(body, raw_max_bytes()),
    )


@register_change_parser("change")
def parse_change_json(
    payload: Any, headers: Mapping[str, str], default_service: str
) -> list[ParsedChange]:
    if isinstance(payload, list):
        if len(payload) > MAX_CHANGES_PER_PAYLOAD:
            raise PayloadError(
                f"{len(payload)} changes in one payload; the limit is {MAX_CHANGES_PER_PAYLOAD}"
            )
        return [_one(x, f"[{i}]", default_service) for i, x in enumerate(payload)]
    return [_one(payload, "", default_service)]
