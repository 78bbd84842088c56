"""Check and action entries of an offline runbook, and the parameters read from the facts."""

from .facts import Facts


def step(step_id: str, action: str, params: dict) -> dict:
    """A check entry."""
    return {"id": step_id, "action": action, "params": params}


def act(step_id: str, action: str, params: dict, *, safe: bool, rationale: str) -> dict:
    """A recommended-action entry."""
    return {
        "id": step_id,
        "action": action,
        "safe": safe,
        "params": params,
        "rationale": rationale,
    }


def restart(rationale: str) -> dict:
    """Restarting is destructive: always proposed for approval, with why it may help."""
    return act("restart_service", "service.restart", {}, safe=False, rationale=rationale)


def label(service: str) -> str:
    """A PromQL label selector for the service, or nothing without one."""
    return f'{{service="{service}"}}' if service else ""


def error_rate_query(service: str) -> str:
    """PromQL for the rate of 5xx responses, of the service when there is one."""
    selector = f'status=~"5..",service="{service}"' if service else 'status=~"5.."'
    return f"sum(rate(http_requests_total{{{selector}}}[5m]))"


def health(f: Facts) -> dict:
    """The health-check step."""
    return step("check_health", "http.health_check", {})


def logs(f: Facts, pattern: str, step_id: str = "search_error_logs") -> dict | None:
    """A log search for the service, or None when the text names no valid service."""
    if not f.service:
        return None  # logs.search needs a service name; never guess one
    return step(
        step_id, "logs.search", {"service": f.service, "pattern": pattern, "lookback_minutes": 60}
    )


def notify(f: Facts, incident_type: str, summary: str) -> dict:
    """The responder notification that every playbook offers."""
    title = f.title if len(f.title) <= 150 else f.title[:149] + "…"
    severity = f"[{f.severity}] " if f.severity else ""
    return act(
        "notify_responders",
        "alert.notify",
        {"message": f"{severity}{title}: {summary} (offline runbook, {incident_type})."},
        safe=True,
        rationale="Keep responders and stakeholders informed while the checks run.",
    )


def kill_after(f: Facts) -> int:
    """Seconds after which a query counts as stuck."""
    # Well past what users reported waiting: those queries are stuck, not slow.
    return min(max(2 * f.seconds, 60), 86_400) if f.seconds else 300


def slow_threshold_ms(f: Facts) -> int:
    """Milliseconds after which a query counts as slow: what users reported waiting."""
    return min(max(f.seconds * 1000, 1000), 3_600_000) if f.seconds else 5000
