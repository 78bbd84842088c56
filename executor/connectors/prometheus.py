"""Prometheus HTTP API connector: `/api/v1/query_range` and `/api/v1/query`.

The PromQL expression is checked here (again, after the parameter schema) and
is only ever sent as a form-encoded POST field, never pasted into a URL. Every
request is bounded by the step's deadline (connect and read timeouts derived
from it, the body read in chunks up to a cap) and Prometheus is told the same
budget through its own `timeout` parameter, so it stops evaluating too.
"""

import math
import statistics
import time
from typing import Any

from executor.connectors import http
from executor.connectors.http import bearer
from executor.connectors.promql import check_query
from executor.results import StepError, time_left

MAX_BODY_BYTES = 8 * 1024 * 1024


def _api_call(target: Any, path: str, params: dict, deadline: float) -> Any:
    """POST to a Prometheus API endpoint; the `data` of a success, else StepError."""
    what = f"Prometheus target {target.name} ({target.display_url})"
    # Let Prometheus give up a little before we do, so its own error comes back.
    params = {**params, "timeout": f"{max(100, int((time_left(deadline) - 0.2) * 1000))}ms"}
    status, payload, text = http.request_json(
        "POST",
        http.api_url(target.url, path),
        params=params,
        deadline=deadline,
        headers=bearer(target),
        what=what,
        max_bytes=MAX_BODY_BYTES,
    )
    if isinstance(payload, dict) and payload.get("status") == "error":
        kind = str(payload.get("errorType", "error"))[:40]
        message = str(payload.get("error", ""))[:400]
        raise StepError(f"Prometheus {kind}: {message}")
    if status in (401, 403):
        raise StepError(f"{what}: HTTP {status}, not authorised (check the target's token)")
    if status != 200 or not isinstance(payload, dict) or payload.get("status") != "success":
        excerpt = " ".join(text.split())[:200]
        raise StepError(f"{what}: HTTP {status}, unexpected answer: {excerpt}")
    return payload


def _number(value: Any) -> float | None:
    """A sample value as a finite float; NaN and ±Inf become None (they are not JSON)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


def step_seconds(lookback_minutes: int, min_step_seconds: float) -> float:
    """The range query's step: about 60 points over the window, never below the scrape step."""
    window = lookback_minutes * 60
    return max(min_step_seconds, window / 60)


def query_summary(
    target: Any,
    expr: str,
    *,
    lookback_minutes: int,
    deadline: float,
    min_step_seconds: float = 15.0,
    max_series: int = 10,
    threshold: float | None = None,
    breach_when: str = "above",
) -> dict:
    """Evaluate `expr` now and over the window; a bounded summary per series.

    Each series: labels, current (the instant query; the last point of the
    window when the series has no value now), min, max, baseline (median of the
    window's points), change_pct (current vs baseline) and breach (current above,
    or with breach_when="below" under, the threshold, when one is given).
    """
    check_query(expr, target)
    step = step_seconds(lookback_minutes, min_step_seconds)
    end = time.time()
    start = end - lookback_minutes * 60
    ranged = _api_call(
        target,
        "/api/v1/query_range",
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        deadline,
    )
    instant = _api_call(target, "/api/v1/query", {"query": expr, "time": f"{end:.3f}"}, deadline)
    warnings = [
        str(w)[:200] for w in (ranged.get("warnings") or []) + (instant.get("warnings") or [])
    ]

    rdata = ranged.get("data") or {}
    if rdata.get("resultType") != "matrix":
        raise StepError(f"Prometheus answered a {rdata.get('resultType')!r} to a range query")
    idata = instant.get("data") or {}
    current: dict[tuple, float | None] = {}
    if idata.get("resultType") == "vector":
        for item in idata.get("result") or []:
            current[_key(item.get("metric") or {})] = _number((item.get("value") or [0, None])[1])
    elif idata.get("resultType") == "scalar":
        current[()] = _number((idata.get("result") or [0, None])[1])
    elif idata.get("resultType") not in ("matrix",):
        raise StepError(f"Prometheus answered a {idata.get('resultType')!r}: not a number series")

    series = []
    seen: set[tuple] = set()
    for item in rdata.get("result") or []:
        labels = item.get("metric") or {}
        key = _key(labels)
        seen.add(key)
        values = [v for v in (_number(p[1]) for p in item.get("values") or []) if v is not None]
        now = current.get(key, values[-1] if values else None)
        series.append(_series(labels, now, values, threshold, breach_when))
    for key, now in current.items():
        if key not in seen:  # a series that exists now but had no point in the window
            series.append(_series(dict(key), now, [], threshold, breach_when))

    # Breaches first, then the largest current values: what a responder looks at first.
    series.sort(key=lambda s: (not s["breach"], s["current"] is None, -(s["current"] or 0.0)))
    return {
        "query": expr,
        "target": target.display_url,
        "window_minutes": lookback_minutes,
        "step_seconds": step,
        "threshold": threshold,
        "breach_when": breach_when,
        "series_total": len(series),
        "series": series[:max_series],
        "truncated": len(series) > max_series,
        "breaches": sum(1 for s in series if s["breach"]),
        "warnings": warnings[:5],
    }


def range_points(
    target: Any, expr: str, *, start: float, end: float, step: float, deadline: float
) -> list[tuple[float, float]]:
    """The first series of `expr` over [start, end] as (unix time, value); NaN dropped."""
    check_query(expr, target)
    ranged = _api_call(
        target,
        "/api/v1/query_range",
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        deadline,
    )
    data = ranged.get("data") or {}
    if data.get("resultType") != "matrix":
        raise StepError(f"Prometheus answered a {data.get('resultType')!r} to a range query")
    for item in data.get("result") or []:
        points = []
        for point in item.get("values") or []:
            value = _number(point[1]) if isinstance(point, list) and len(point) == 2 else None
            if value is not None:
                points.append((float(point[0]), value))
        return points
    return []


def _series(
    labels: dict, now: float | None, values: list[float], threshold: float | None, when: str
) -> dict:
    # Bounded: at most 12 labels, names and values cut, so 50 series stay small.
    shown = {str(k)[:60]: str(v)[:120] for k, v in sorted(labels.items())[:12]}
    baseline = statistics.median(values) if values else None
    change = None
    if now is not None and baseline not in (None, 0):
        change = round((now - baseline) / abs(baseline) * 100, 2)
    return {
        "labels": shown,
        "current": now,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "baseline": baseline,
        "change_pct": change,
        "points": len(values),
        "breach": _breaches(now, threshold, when),
    }


def _breaches(value: float | None, threshold: float | None, when: str) -> bool:
    if value is None or threshold is None:
        return False
    return value < threshold if when == "below" else value > threshold


def describe_labels(labels: dict) -> str:
    """`{a="b", c="d"}` for a summary line, bounded."""
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + (inner if len(inner) <= 160 else inner[:159] + "…") + "}"
