"""What every parser produces, and the bounded, validated helpers they share.

Alert text is untrusted: every string is clipped, every mapping bounded, every
URL checked to be http(s) before it is stored or shown.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_LABELS = 64
MAX_LABEL_KEY = 100
MAX_LABEL_VALUE = 1000
MAX_ANNOTATION_VALUE = 4000
MAX_TITLE = 200
MAX_DESCRIPTION = 8000
MAX_SERVICE = 100
MAX_KEY = 255
MAX_URL = 2000


class PayloadError(Exception):
    """The body is JSON but not in the source's format. The message names the field."""


@dataclass
class ParsedAlert:
    """One alert, normalised to the fields our Alert row holds (severity still raw)."""

    dedup_key: str
    status: str  # firing | resolved | acknowledged
    title: str
    source_severity: str = ""
    description: str = ""
    service: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    source_url: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    group_key: str = ""
    fingerprint: str = ""
    # Distinguishes two deliveries that differ only by when they happened.
    occurrence: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    # PagerDuty acknowledge/resolve for a key we never saw: PagerDuty drops these too.
    update_only: bool = False

    def content_hash(self) -> str:
        body = {
            "status": self.status,
            "title": self.title,
            "severity": self.source_severity,
            "description": self.description,
            "service": self.service,
            "labels": self.labels,
            "annotations": self.annotations,
            "url": self.source_url,
            "starts": self.starts_at.isoformat() if self.starts_at else None,
            "ends": self.ends_at.isoformat() if self.ends_at else None,
            "group": self.group_key,
            "occurrence": self.occurrence,
        }
        return sha256_json(body)


@dataclass
class ParseResult:
    alerts: list[ParsedAlert]
    # Extra fields for the HTTP answer (PagerDuty returns the dedup key).
    answer: dict[str, Any] = field(default_factory=dict)


def sha256_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def clip(value: Any, limit: int) -> str:
    """A string of at most `limit` characters; None becomes ""; scalars are stringified."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, sort_keys=True, default=str)
    # NUL cannot be stored by PostgreSQL text columns.
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def key(value: Any, what: str = "key") -> str:
    """A dedup or group key: short ones kept as sent, long ones hashed to fit the column."""
    text = clip(value, 100_000).strip()
    if len(text) > MAX_KEY:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def opt_str(obj: dict, name: str, path: str, limit: int) -> str:
    """An optional string field: absent/null → "", wrong type → PayloadError."""
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{path}{name} must be a string")
    return clip(value, limit)


def req_str(obj: dict, name: str, path: str, limit: int) -> str:
    value = opt_str(obj, name, path, limit)
    if not value.strip():
        raise PayloadError(f"{path}{name} is required")
    return value


def as_object(value: Any, path: str, *, required: bool = False) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{path} must be an object")
    return value


def string_map(value: Any, path: str, *, value_limit: int = MAX_LABEL_VALUE) -> dict[str, str]:
    """Labels/annotations: an object of strings, bounded in count and length."""
    obj = as_object(value, path)
    out: dict[str, str] = {}
    for k in sorted(obj, key=str)[:MAX_LABELS]:
        out[clip(k, MAX_LABEL_KEY)] = clip(obj[k], value_limit)
    return out


def labels_fingerprint(labels: dict[str, str]) -> str:
    """Stable hash of a label set, for alerts sent without a fingerprint."""
    return hashlib.sha256(
        json.dumps(labels, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]


_url_validator = URLValidator(schemes=["http", "https"])


def safe_url(value: Any) -> str:
    """An http(s) URL we are willing to render as a link, else ""."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return ""
    try:
        _url_validator(value)
    except ValidationError:
        return ""
    return value


_FRACTION = re.compile(r"(\.\d{6})\d+")
_MIN = datetime(1970, 1, 2, tzinfo=UTC)
_MAX = datetime(9999, 1, 1, tzinfo=UTC)


def parse_time(value: Any, path: str) -> datetime | None:
    """RFC 3339 (nanoseconds allowed) or epoch seconds/milliseconds; Go's zero time → None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{path} must be a timestamp")
    if isinstance(value, str) and re.fullmatch(r"\d{9,14}(\.\d+)?", value.strip()):
        value = float(value)
    if isinstance(value, int | float):
        try:
            seconds = float(value) / 1000 if value > 1e11 else float(value)
            result = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise PayloadError(f"{path} is not a valid timestamp") from exc
    elif isinstance(value, str):
        text = _FRACTION.sub(r"\1", value.strip()[:64])
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            result = datetime.fromisoformat(text)
        except ValueError as exc:
            raise PayloadError(f"{path} is not an RFC 3339 timestamp") from exc
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)
    else:
        raise PayloadError(f"{path} must be a timestamp")
    if result < _MIN or result > _MAX:
        return None  # Alertmanager's "0001-01-01T00:00:00Z" means "not set"
    return result.astimezone(UTC)


def raw_max_bytes() -> int:
    """How much of each alert's own payload is kept (read once per delivery, not per alert)."""
    return settings.INGEST_RAW_MAX_BYTES


def bounded_raw(value: Any, limit: int) -> dict[str, Any]:
    """The sender's own piece of the payload, kept for the record while it is small."""
    try:
        size = len(json.dumps(value, default=str))
    except (TypeError, ValueError, RecursionError):
        return {"_unserialisable": True}
    if size > limit:
        return {"_truncated": True, "bytes": size}
    return value if isinstance(value, dict) else {"value": value}
