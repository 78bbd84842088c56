"""Text and JSON that PostgreSQL will store, whatever a sender, a target or a model wrote.

PostgreSQL refuses a NUL character in text and jsonb, and a lone surrogate (JSON's
"\\ud800", decoded by Python) cannot be encoded as UTF-8 at all: either fails the whole
statement it is in. Every boundary where outside text comes in (a webhook's payload, a
target's answer, a generated document) passes it through here first.
"""

from typing import Any


def clean_text(value: str) -> str:
    """A string PostgreSQL will store: no NUL, no lone surrogate (replaced by "?")."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value


def clean_payload(value: Any) -> Any:
    """The decoded payload with every string (keys too) passed through clean_text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {
            clean_text(k) if isinstance(k, str) else k: clean_payload(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_payload(v) for v in value]
    return value
