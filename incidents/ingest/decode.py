"""Reading a webhook body: bounded in size, strict UTF-8 JSON (no NaN or Infinity)."""

import json
from typing import Any

from django.http import HttpRequest


class DecodeError(Exception):
    """The body is not valid UTF-8 JSON. The message is safe to send back."""


def read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is larger than the limit (read no further than that)."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(body: bytes) -> Any:
    """The decoded payload, or DecodeError naming the kind of failure."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"The body is not valid UTF-8 JSON: {type(exc).__name__}") from exc
