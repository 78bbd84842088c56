"""Parsers by source kind, filled by `@register_parser(kind)` in one module per family."""

from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings

from .base import ParseResult, PayloadError

Parser = Callable[..., ParseResult]
PARSERS: dict[str, Parser] = {}
_FAMILIES = ("alertmanager", "pagerduty", "datadog", "generic")


def register_parser(kind: str) -> Callable[[Parser], Parser]:
    def decorator(fn: Parser) -> Parser:
        if kind in PARSERS:
            raise ValueError(f"a parser for {kind!r} is already registered")
        PARSERS[kind] = fn
        return fn

    return decorator


def load_parsers() -> None:
    """Import every family's module, filling PARSERS; IncidentsConfig.ready() calls this once,
    so no request ever sees a half-filled registry."""
    for family in _FAMILIES:
        import_module(f"{__package__}.{family}")


def parse_payload(kind: str, payload: Any, *, default_service: str = "") -> ParseResult:
    """Parse one delivery into normalised alerts, or raise PayloadError saying what is wrong."""
    parser = PARSERS.get(kind)
    if parser is None:
        raise PayloadError(f"no parser for source kind {kind!r}")
    result = parser(payload, default_service=default_service)
    limit = settings.INGEST_MAX_ALERTS_PER_PAYLOAD
    if len(result.alerts) > limit:
        raise PayloadError(f"{len(result.alerts)} alerts in one payload; the limit is {limit}")
    return result
