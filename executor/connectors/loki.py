"""Loki connector: `/loki/api/v1/query_range` with a LogQL we build ourselves.

The query always has exactly this shape, from validated values only:

    {<service_label>="<service>"} |= "<pattern>"

LogQL reads double-quoted strings as Go string literals, so escaping `\\` and
`"` and refusing control characters is enough for any pattern to stay inside
its quotes: `|~`, braces or a second pipeline stage in a pattern are literal
text that a line must contain, never syntax.
"""

import re
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from executor.connectors import http
from executor.connectors.http import bearer
from executor.results import StepBlocked, StepError

SERVICE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
LABEL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
MAX_PATTERN_CHARS = 200
DEFAULT_LIMIT = 1000
MAX_BODY_BYTES = 16 * 1024 * 1024  # 1000 lines of up to 16 KiB each
TOP_PATTERNS = 5
SAMPLES = 5
SAMPLE_CHARS = 300
PATTERN_CHARS = 200


def check_service(service: object) -> str:
    if not isinstance(service, str) or not SERVICE_RE.fullmatch(service):
        raise StepBlocked(f"refused service {repr(service)[:80]}: letters, digits, _ . - only")
    return service


def check_label_name(name: object) -> str:
    if not isinstance(name, str) or not LABEL_NAME_RE.fullmatch(name):
        raise StepBlocked(
            f"refused Loki label name {repr(name)[:80]} (target option service_label)"
        )
    return name


def check_pattern(pattern: object) -> str:
    """A plain text pattern: any printable text, no control or format characters."""
    if not isinstance(pattern, str) or not pattern:
        raise StepBlocked("refused pattern: empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise StepBlocked(f"refused pattern: longer than {MAX_PATTERN_CHARS} characters")
    for i, c in enumerate(pattern):
        # Cc: control chars and newlines; Cs: lone surrogates (not UTF-8); Cf: bidi
        # overrides and zero-width characters that would hide text in a plan.
        if unicodedata.category(c) in ("Cc", "Cs", "Cf"):
            raise StepBlocked(f"refused pattern: control character {c!r} at position {i}")
    return pattern


def quote(value: str) -> str:
    """`value` as a LogQL double-quoted string (a Go string literal)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_label(target: Any) -> str:
    """The stream label that names a service on this target (options.service_label)."""
    return (getattr(target, "options", None) or {}).get("service_label", "service")


def build_query(*, service: str, pattern: str, label: str = "service") -> str:
    """The one LogQL shape this connector sends; every part validated first."""
    check_label_name(label)
    check_service(service)
    check_pattern(pattern)
    return f"{{{label}={quote(service)}}} |= {quote(pattern)}"


_NORMALISERS = [
    # Order matters: the longest, most specific shapes go first.
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<ts>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<id>"),
    # Hex ids (trace ids, hashes, object ids): 8+ hex chars with at least one digit.
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<id>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]


def normalise(line: str) -> str:
    """A log line with the parts that differ between repeats (numbers, ids, IPs) replaced."""
    text = line
    for regex, token in _NORMALISERS:
        text = regex.sub(token, text)
    text = " ".join(text.split())
    return text if len(text) <= PATTERN_CHARS else text[: PATTERN_CHARS - 1] + "…"


def _sample(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= SAMPLE_CHARS else line[: SAMPLE_CHARS - 1] + "…"


def _iso(ns: str) -> str:
    try:
        return datetime.fromtimestamp(int(ns) / 1e9, tz=UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return ""


def _query_range(
    target: Any, query: str, start_ns: int, end_ns: int, limit: int, deadline: float
) -> list[tuple[str, str]]:
    """(nanosecond timestamp, line) of every entry Loki returns for `query`."""
    what = f"Loki target {target.name} ({target.display_url})"
    status, payload, text = http.request_json(
        "GET",
        http.api_url(target.url, "/loki/api/v1/query_range"),
        params={
            "query": query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(limit),
            "direction": "backward",
        },
        deadline=deadline,
        headers=bearer(target),
        what=what,
        max_bytes=MAX_BODY_BYTES,
    )
    if status in (401, 403):
        raise StepError(f"{what}: HTTP {status}, not authorised (check the target's token)")
    if status != 200 or not isinstance(payload, dict) or payload.get("status") != "success":
        # Loki answers errors as plain text ("parse error at line 1, col 5: ...").
        message = payload.get("error") if isinstance(payload, dict) else None
        excerpt = " ".join(str(message or text).split())[:400]
        raise StepError(f"Loki: HTTP {status}: {excerpt}")
    data = payload.get("data") or {}
    if data.get("resultType") != "streams":
        raise StepError(f"Loki answered a {data.get('resultType')!r} to a log query")

    lines: list[tuple[str, str]] = []
    for stream in data.get("result") or []:
        for entry in stream.get("values") or []:
            if isinstance(entry, list) and len(entry) >= 2:
                lines.append((str(entry[0]), str(entry[1])))
    return lines


def lines_between(
    target: Any,
    *,
    service: str,
    pattern: str,
    start: float,
    end: float,
    deadline: float,
    limit: int = DEFAULT_LIMIT,
) -> list[tuple[float, str]]:
    """Lines of `service` containing `pattern` between two unix times, oldest first."""
    query = build_query(service=service, pattern=pattern, label=service_label(target))
    entries = _query_range(target, query, int(start * 1e9), int(end * 1e9), limit, deadline)
    found = [(int(ns) / 1e9, line) for ns, line in entries if ns.isdigit()]
    return sorted(found)


def search(
    target: Any,
    *,
    service: str,
    pattern: str,
    lookback_minutes: int,
    deadline: float,
    limit: int = DEFAULT_LIMIT,
) -> dict:
    """Lines of `service` that contain `pattern` over the window: count, top patterns, samples."""
    query = build_query(service=service, pattern=pattern, label=service_label(target))
    end_ns = time.time_ns()
    start_ns = end_ns - lookback_minutes * 60 * 1_000_000_000
    lines = _query_range(target, query, start_ns, end_ns, limit, deadline)
    lines.sort(key=lambda e: int(e[0]) if e[0].isdigit() else 0, reverse=True)  # newest first
    counts = Counter(normalise(line) for _, line in lines)
    return {
        "query": query,
        "target": target.display_url,
        "window_minutes": lookback_minutes,
        "count": len(lines),
        "limit": limit,
        # Loki stops at `limit` lines: the real count is at least this many.
        "truncated": len(lines) >= limit,
        "top_patterns": [{"pattern": p, "count": n} for p, n in counts.most_common(TOP_PATTERNS)],
        "distinct_patterns": len(counts),
        "samples": [{"time": _iso(ts), "line": _sample(line)} for ts, line in lines[:SAMPLES]],
    }
