"""Prometheus and Loki queries: read-only checks against the observability targets."""

from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import loki as lconn
from executor.connectors import prometheus as pconn
from executor.connectors import promql
from executor.registry import register
from executor.results import StepBlocked, StepResult

DEFAULT_LOOKBACK_MINUTES = 30
DEFAULT_MAX_SERIES = 10


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _where(target: Any) -> str:
    if target is None:
        return "the service's target (none resolved yet)"
    return f"target {target.name} ({target.display_url})"


def _min_step(target: Any) -> float:
    """Targets that scrape faster than 15 s may say so (options.min_step_seconds)."""
    raw = (getattr(target, "options", None) or {}).get("min_step_seconds", 15)
    try:
        return min(max(float(raw), 1.0), 3600.0)
    except (TypeError, ValueError):
        return 15.0


@register(
    name="metrics.query",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Evaluate a PromQL expression now and over the last lookback_minutes: per series "
    "current, min, max, baseline (median over the window) and change in %, the top max_series "
    "series. With a threshold, warn when a series' current value is above it (or below it, with "
    'breach_when "below").',
    params={
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": promql.MAX_QUERY_CHARS,
                # Printable ASCII without backtick and ";" (no tabs, no newlines); the
                # executor checks the structure again (quotes, brackets, ranges).
                "pattern": r"^[ !-:<-_a-~]+$(?!\n)",
                "description": 'PromQL, e.g. sum(rate(http_requests_total{status=~"5.."}[5m])). '
                "Label values in double quotes only. Every selector names a metric, or is "
                'scoped to the incident\'s service (service="<name>").',
            },
            "lookback_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
            "threshold": {"type": "number"},
            "breach_when": {"enum": ["above", "below"]},
            "max_series": {"type": "integer", "minimum": 1, "maximum": 50},
        },
    },
    targets=("prometheus",),
    normalize=seed_params.renamed("range_minutes", "lookback_minutes"),
)
class MetricsQuery:
    def plan(self, params: dict, target: Any) -> str:
        query = params.get("query", "")
        try:
            promql.check_query(query, target)
        except StepBlocked as exc:
            return f"Would refuse to query Prometheus: {exc}."
        minutes = int(params.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES))
        step = pconn.step_seconds(minutes, _min_step(target))
        threshold = params.get("threshold")
        when = params.get("breach_when", "above")
        return (
            f"POST /api/v1/query_range (window {minutes} min, step {step:g} s) and "
            f"/api/v1/query (now) on {_where(target)} with query={query}. "
            + (f"Warn when a series is {when} {threshold:g}. " if threshold is not None else "")
            + "Read-only; the query is sent as a form field."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        if target is None or target.kind != "prometheus":
            raise StepBlocked("this step needs a prometheus target")
        threshold = params.get("threshold")
        when = params.get("breach_when", "above")
        got = pconn.query_summary(
            target,
            params.get("query", ""),
            lookback_minutes=int(params.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES)),
            deadline=deadline,
            min_step_seconds=_min_step(target),
            max_series=int(params.get("max_series", DEFAULT_MAX_SERIES)),
            threshold=float(threshold) if threshold is not None else None,
            breach_when=when,
        )
        series = got["series"]
        if not series:
            summary = f"no series for {got['query'][:120]} over {got['window_minutes']} min"
        else:
            top = series[0]
            change = top["change_pct"]
            summary = (
                f"{got['series_total']} series; "
                f"{pconn.describe_labels(top['labels'])} now {_fmt(top['current'])} "
                f"(min {_fmt(top['min'])}, max {_fmt(top['max'])}, "
                f"baseline {_fmt(top['baseline'])}"
                + (f", {change:+.1f}%" if change is not None else "")
                + f") over {got['window_minutes']} min"
            )
        if threshold is not None:
            if got["breaches"]:
                summary = (
                    f"breach: {got['breaches']} series {when} threshold {threshold:g}; " + summary
                )
            else:
                summary = f"no breach of threshold {threshold:g} ({when}); " + summary
        got["breach"] = bool(got["breaches"])
        lines = [summary, f"query: {got['query']}"]
        for s in series:
            lines.append(
                f"{pconn.describe_labels(s['labels'])} current={_fmt(s['current'])} "
                f"min={_fmt(s['min'])} max={_fmt(s['max'])} baseline={_fmt(s['baseline'])} "
                f"change={_fmt(s['change_pct'])}%" + (" BREACH" if s["breach"] else "")
            )
        if got["truncated"]:
            lines.append(f"… {got['series_total'] - len(series)} more series not shown")
        lines.extend(f"warning: {w}" for w in got["warnings"])
        return StepResult(
            outcome="warn" if got["breach"] else "ok",
            summary=summary,
            data=got,
            text="\n".join(lines),
        )


@register(
    name="logs.search",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Search a service's logs over the last lookback_minutes for lines containing a "
    "plain-text pattern (literal, case-sensitive; not a regex): count, top repeated messages "
    "with numbers, ids and IPs normalised away, and a few samples. Warns when any line matches, "
    "since the pattern is what the runbook suspects (an error text).",
    params={
        "type": "object",
        "required": ["service", "pattern"],
        "properties": {
            "service": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,100}$(?!\n)"},
            "pattern": {
                "type": "string",
                "minLength": 1,
                "maxLength": lconn.MAX_PATTERN_CHARS,
                # No control characters (newlines, tabs); quotes and braces are literal text.
                "pattern": r"^[^\x00-\x1f\x7f]+$(?!\n)",
                "description": "Literal text a log line must contain, e.g. connection refused.",
            },
            "lookback_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
        },
    },
    targets=("loki",),
)
class LogsSearch:
    def plan(self, params: dict, target: Any) -> str:
        try:
            query = lconn.build_query(
                service=params.get("service"),
                pattern=params.get("pattern"),
                label=lconn.service_label(target),
            )
        except StepBlocked as exc:
            return f"Would refuse to search logs: {exc}."
        minutes = int(params.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES))
        return (
            f"GET /loki/api/v1/query_range on {_where(target)} with query={query} over the "
            f"last {minutes} min, newest {lconn.DEFAULT_LIMIT} lines at most. Read-only; "
            "the pattern is matched as literal text."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        if target is None or target.kind != "loki":
            raise StepBlocked("this step needs a loki target")
        got = lconn.search(
            target,
            service=params.get("service"),
            pattern=params.get("pattern"),
            lookback_minutes=int(params.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES)),
            deadline=deadline,
        )
        count = f"{'at least ' if got['truncated'] else ''}{got['count']}"
        shown = params.get("pattern", "")
        shown = shown if len(shown) <= 60 else shown[:59] + "…"
        summary = f"{count} lines of {params.get('service')} contain {shown!r} in the last {got['window_minutes']} min"
        if got["top_patterns"]:
            top = got["top_patterns"][0]
            summary += f"; most repeated ({top['count']}×): {top['pattern'][:120]}"
        lines = [summary, f"query: {got['query']}"]
        lines += [f"{p['count']:>6}× {p['pattern']}" for p in got["top_patterns"]]
        lines += [f"{s['time']} {s['line']}" for s in got["samples"]]
        return StepResult(
            outcome="warn" if got["count"] else "ok",
            summary=summary,
            data=got,
            text="\n".join(lines),
        )
