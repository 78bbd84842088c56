"""Reading a webhook body: bounded in size, strict UTF-8 JSON (no NaN or Infinity)."""

from typing import Any

from django.http import HttpRequest

from incidents import jsonsafe


class DecodeError(Exception):
    """The body is not valid UTF-8 JSON. The message is safe to send back."""


def read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is larger than the limit (read no further than that)."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def decode_json(body: bytes) -> Any:
    """The decoded payload, or DecodeError naming the kind of failure."""
    try:
        return jsonsafe.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"The body is not valid UTF-8 JSON: {type(exc).__name__}") from exc
