"""Strict JSON: the one decoder and checker every JSON boundary uses.

Python's json module accepts `NaN`, `Infinity` and `-Infinity`, and numbers such as
`1e999` that overflow to infinity. None of them is JSON (RFC 8259), PostgreSQL's
json type refuses them, and NaN passes every `minimum`/`maximum` check because
comparisons with it are false. So they are refused where JSON enters (`loads`),
found in data already parsed (`non_finite_paths`), and never written (`dumps`).
"""

import json
import math
from typing import Any


class NonFiniteNumber(ValueError):
    """A JSON document holds NaN, Infinity or a number too large for a float."""


def _reject_constant(name: str) -> float:
    raise NonFiniteNumber(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumber(f"{text[:40]} is too large for a number")
    return value


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads that raises NonFiniteNumber (a ValueError) for non-finite numbers."""
    return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps that raises ValueError instead of writing NaN or Infinity."""
    return json.dumps(value, allow_nan=False, **kwargs)


def non_finite_paths(value: Any, path: str = "$", limit: int = 20) -> list[str]:
    """JSONPath-like paths ($.a[0].b) of the non-finite floats in already-parsed data."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack and len(found) < limit:
        item, where = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                found.append(where)
        elif isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(item))))
    return found


def ensure_finite(value: Any) -> Any:
    """`value` unchanged, or NonFiniteNumber naming where the first non-finite number is."""
    paths = non_finite_paths(value, limit=1)
    if paths:
        raise NonFiniteNumber(f"{paths[0]} is not a finite number")
    return value
