"""The deterministic offline planner: a runbook from keywords, with no network.

It scores the incident text against a few incident scenarios, picks the best,
and assembles checks and actions from the executor's registry: only those
that have a target for the incident's service (`offer().step_targets`, the view
Claude gets too). Identifiers taken from the text (a table name, a cache key
prefix, a service name) are used only when they match the strict patterns the
action schemas demand; otherwise the step that needs them is left out. The same input always gives the same output.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from .offer import offer

NEGATORS = frozenset({"no", "not", "without", "never", "nor", "zero"})
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
CACHE_KEY = re.compile(r"^[A-Za-z0-9_.\-]+:[A-Za-z0-9:_.\-]*\*?$")
NOT_TABLES = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "for",
        "from",
        "has",
        "had",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "scan",
        "scans",
        "lock",
        "locks",
        "locked",
        "size",
        "stats",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "which",
        "with",
        "whole",
        "full",
        "same",
        "entire",
        "big",
        "large",
        "huge",
        "main",
    ]
)
# Systems worth naming as the affected system when the text mentions them.
KNOWN_SYSTEMS = (
    "athena",
    "postgresql",
    "postgres",
    "mysql",
    "redis",
    "memcached",
    "kafka",
    "rabbitmq",
    "elasticsearch",
    "opensearch",
    "mongodb",
    "dynamodb",
    "bigquery",
    "snowflake",
    "clickhouse",
    "nginx",
    "kubernetes",
)


@dataclass(frozen=True)
class Scenario:
    incident_type: str
    keywords: dict[str, float]  # word or phrase → weight
    default_system: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "security_incident",
        {
            "breach": 3,
            "unauthorized": 3,
            "unauthorised": 3,
            "intrusion": 3,
            "compromised": 3,
            "exfiltration": 3,
            "malware": 3,
            "ransomware": 3,
            "attacker": 3,
            "suspicious": 2,
            "brute force": 3,
            "credential stuffing": 3,
            "leaked credentials": 3,
            "leaked": 2,
            "phishing": 2,
            "security": 2,
            "privilege escalation": 3,
        },
        "application",
    ),
    Scenario(
        "performance_degradation",
        {
            "slow": 2,
            "slowness": 2,
            "latency": 2,
            "timing out": 2,
            "timeouts": 1,
            "timeout": 1,
            "queries": 2,
            "query": 2,
            "sql": 1,
            "database": 1,
            "db": 1,
            "waits": 1,
            "waiting": 1,
            "sluggish": 2,
            "p99": 1,
            "p95": 1,
            "response time": 2,
            "performance": 1,
            "seconds": 1,
            "second": 1,
        },
        "database",
    ),
    Scenario(
        "error_rate_spike",
        {
            "error rate": 3,
            "errors": 2,
            "error": 1,
            "5xx": 3,
            "500s": 3,
            "exceptions": 2,
            "exception": 1,
            "spike": 1,
            "deploy": 2,
            "deployed": 2,
            "deployment": 2,
            "release": 1,
            "rollout": 2,
            "failing requests": 2,
        },
        "application",
    ),
    Scenario(
        "service_down",
        {
            "down": 3,
            "outage": 3,
            "unreachable": 3,
            "unavailable": 2,
            "not responding": 3,
            "health check": 2,
            "healthcheck": 2,
            "crash": 2,
            "crashed": 2,
            "crashloop": 3,
            "connection refused": 3,
            "503": 2,
            "502": 2,
        },
        "application",
    ),
    Scenario(
        "connection_pool_exhaustion",
        {
            "connection pool": 4,
            "pool exhausted": 4,
            "too many connections": 4,
            "max_connections": 4,
            "connection slots": 4,
            "connection limit": 3,
            "connections": 1,
            "pool": 1,
        },
        "database",
    ),
    Scenario(
        "cache_issue",
        {
            "cache": 3,
            "cached": 2,
            "stale": 2,
            "stampede": 3,
            "thundering herd": 3,
            "invalidate": 2,
            "invalidation": 2,
            "hit rate": 2,
            "cache miss": 2,
            "redis": 1,
            "memcached": 1,
        },
        "cache",
    ),
    Scenario(
        "host_resource_pressure",
        {
            "disk": 2,
            "disk full": 4,
            "no space left": 4,
            "out of memory": 4,
            "oom": 4,
            "oomkilled": 4,
            "memory": 2,
            "memory leak": 4,
            "swap": 2,
            "inode": 3,
            "inodes": 3,
            "cpu": 1,
        },
        "host",
    ),
)


@dataclass
class Facts:
    """What the text tells us, extracted once."""

    text: str
    words: list[str]
    service: str  # safe service name or ""
    system: str
    table: str  # safe identifier or ""
    seconds: int  # a duration mentioned in the text, 0 if none
    cache_pattern: str  # explicit key pattern from the text, or ""
    mentions: set[str] = field(default_factory=set)  # matched keywords of the chosen scenario
    title: str = ""
    severity: str = ""
    target_kinds: frozenset[str] = frozenset()


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_+\-]+", text.lower())


def _matches(words: list[str], phrase: str) -> int:
    """Occurrences of `phrase` in `words`, not counting negated ones ("no recent deploys")."""
    parts = phrase.split()
    hits = 0
    for i in range(len(words) - len(parts) + 1):
        found = words[i : i + len(parts)] == parts or (
            len(parts) == 1 and _plural(words[i], parts[0])
        )
        if found and not NEGATORS.intersection(words[max(0, i - 3) : i]):
            hits += 1
    return hits


def _plural(word: str, stem: str) -> bool:
    return word in (stem, stem + "s", stem + "es", stem + "ed", stem + "ing")


def _score(scenario: Scenario, words: list[str]) -> tuple[float, set[str]]:
    score = 0.0
    found = set()
    for phrase, weight in scenario.keywords.items():
        if _matches(words, phrase):
            score += weight
            found.add(phrase)
    return score, found


def _table(text: str) -> str:
    patterns = (
        r"\b(?:the|in|on|from|of|our|into)\s+[`\"']?([A-Za-z_][A-Za-z0-9_]*)[`\"']?\s+table\b",
        r"\btable\s+[`\"']?([A-Za-z_][A-Za-z0-9_]*)[`\"']?",
    )
    for pattern in patterns:
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            name = m.group(1)
            if IDENTIFIER.match(name) and name.lower() not in NOT_TABLES:
                return name
    return ""


def _seconds(text: str) -> int:
    # "30 seconds", "30+ second", "30s", "5 min"; never "500s" (HTTP 500s) or "1.5s".
    m = re.search(
        r"(?<![\d.])(\d{1,5})(?:\s*\+?\s*(seconds?|secs?|minutes?|mins?)\b|\+?(s|m)\b)",
        text,
        flags=re.IGNORECASE,
    )
    if not m:
        return 0
    n, unit = int(m.group(1)), (m.group(2) or m.group(3)).lower()
    if unit == "s" and 100 <= n <= 599:
        return 0  # "500s" is a status-code class, not a duration
    return n * 60 if unit.startswith("m") else n


def _cache_pattern(text: str) -> str:
    for raw in text.split():
        token = raw.strip("`'\"()[]{}<>,;")
        token = token.rstrip(".")
        if token.lower().startswith(("http:", "https:")) or "://" in token:
            continue
        # A key prefix looks like "session:*" or "cart:v2:": a lone "Update:" is prose.
        keyish = token.endswith("*") or token.count(":") >= 2 or raw.startswith("`")
        if (
            keyish
            and CACHE_KEY.match(token)
            and not token.startswith((":", "*"))
            and len(token) <= 190
        ):
            return token if token.endswith("*") else token + "*"
    return ""


def _system(text: str, service: str, default: str) -> str:
    lowered = text.lower()
    found = [
        (m.start(), name)
        for name in KNOWN_SYSTEMS
        for m in [re.search(rf"\b{name}\b", lowered)]
        if m
    ]
    if found:
        name = min(found)[1]
        return "postgresql" if name == "postgres" else name
    return service or default


def _target_kinds(context: dict | None) -> frozenset[str]:
    targets = (context or {}).get("targets")
    if isinstance(targets, list) and targets:
        return frozenset(str(t.get("kind", "")) for t in targets if isinstance(t, dict))
    return offer().target_kinds()


def _facts(incident: Any, context: dict | None) -> Facts:
    title = str(getattr(incident, "title", "") or "")
    description = str(getattr(incident, "description", "") or "")
    raw_service = str(getattr(incident, "service", "") or "").strip()
    service = raw_service if SERVICE_NAME.match(raw_service) else ""
    text = f"{title}\n{description}"
    return Facts(
        text=text,
        words=_tokens(f"{text}\n{raw_service}"),
        service=service,
        system="",
        table=_table(text),
        seconds=_seconds(text),
        cache_pattern=_cache_pattern(text),
        title=title,
        severity=str(getattr(incident, "severity", "") or ""),
        target_kinds=_target_kinds(context),
    )


# --- steps ----------------------------------------------------------------------------


def _step(step_id: str, action: str, params: dict) -> dict:
    return {"id": step_id, "action": action, "params": params}


def _act(step_id: str, action: str, params: dict, *, safe: bool, rationale: str) -> dict:
    return {
        "id": step_id,
        "action": action,
        "safe": safe,
        "params": params,
        "rationale": rationale,
    }


def _restart(rationale: str) -> dict:
    """Restarting is destructive: always proposed for approval, with why it may help."""
    return _act("restart_service", "service.restart", {}, safe=False, rationale=rationale)


def _label(service: str) -> str:
    return f'{{service="{service}"}}' if service else ""


def _error_rate_query(service: str) -> str:
    selector = f'status=~"5..",service="{service}"' if service else 'status=~"5.."'
    return f"sum(rate(http_requests_total{{{selector}}}[5m]))"


def _health(f: Facts) -> dict:
    return _step("check_health", "http.health_check", {})


def _logs(f: Facts, pattern: str, step_id: str = "search_error_logs") -> dict | None:
    if not f.service:
        return None  # logs.search needs a service name; never guess one
    return _step(
        step_id, "logs.search", {"service": f.service, "pattern": pattern, "lookback_minutes": 60}
    )


def _notify(f: Facts, incident_type: str, summary: str) -> dict:
    title = f.title if len(f.title) <= 150 else f.title[:149] + "…"
    severity = f"[{f.severity}] " if f.severity else ""
    return _act(
        "notify_responders",
        "alert.notify",
        {"message": f"{severity}{title}: {summary} (offline runbook, {incident_type})."},
        safe=True,
        rationale="Keep responders and stakeholders informed while the checks run.",
    )


def _kill_after(f: Facts) -> int:
    # Well past what users reported waiting: those queries are stuck, not slow.
    return min(max(2 * f.seconds, 60), 86_400) if f.seconds else 300


def _slow_threshold_ms(f: Facts) -> int:
    return min(max(f.seconds * 1000, 1000), 3_600_000) if f.seconds else 5000


def _performance(f: Facts) -> tuple[list, list, list[str], str]:
    hypotheses = [
        f"Long-running or stuck queries on {f.system} are holding resources and queueing others",
        (
            f"Stale planner statistics on the {f.table} table lead to bad query plans"
            if f.table
            else "Stale planner statistics after data growth lead to bad query plans"
        ),
        f"Connection saturation or lock contention on {f.system} delays new queries",
    ]
    if "deploy" not in f.words and re.search(r"\bno (recent )?deploy", f.text, re.IGNORECASE):
        hypotheses.append(
            "No recent deployment was reported, so a data-volume or workload change is "
            "more likely than a code change"
        )
    checks = [
        _step(
            "check_slow_queries",
            "database.slow_queries",
            {"min_duration_ms": _slow_threshold_ms(f), "limit": 20},
        )
    ]
    if f.table:
        checks.append(_step("check_table_stats", "database.table_stats", {"table": f.table}))
    checks.append(_step("check_connections", "database.connection_count", {}))
    if "prometheus" in f.target_kinds:
        checks.append(
            _step(
                "check_latency",
                "metrics.query",
                {
                    "query": "histogram_quantile(0.99, sum by (le) (rate("
                    f"http_request_duration_seconds_bucket{_label(f.service)}[5m])))",
                    "lookback_minutes": 60,
                },
            )
        )
    actions = []
    if f.table:
        actions.append(
            _act(
                "recompute_stats",
                "database.analyze_table",
                {"table": f.table},
                safe=True,
                rationale=f"Fresh statistics let the planner pick good plans for {f.table}; "
                "ANALYZE only reads the table and updates statistics.",
            )
        )
    older = _kill_after(f)
    actions.append(
        _act(
            "cancel_stuck_queries",
            "database.kill_query",
            {"older_than_seconds": older},
            safe=False,
            rationale=f"Cancelling queries running longer than {older}s frees the database, "
            "but it also cancels legitimate long work: a human should confirm after "
            "reading the slow-query check.",
        )
    )
    actions.append(_notify(f, "performance_degradation", "slow queries under investigation"))
    rollback = (
        "ANALYZE only refreshes planner statistics; if plans get worse, run ANALYZE again "
        "after the data settles or restore the previous statistics targets. Cancelled "
        "queries are not rolled back by anything: their clients must retry them, so tell "
        "the owners of any cancelled job."
    )
    return checks, actions, hypotheses, rollback


def _error_spike(f: Facts) -> tuple[list, list, list[str], str]:
    deploy = any(
        _matches(f.words, k) for k in ("deploy", "deployed", "deployment", "release", "rollout")
    )
    hypotheses = (
        [
            "The most recent deployment introduced a bug that fails requests",
            "A dependency (database, cache, third-party API) is failing and errors propagate",
            "A configuration or feature-flag change shipped with the release",
        ]
        if deploy
        else [
            "A dependency (database, cache, third-party API) is failing and errors propagate",
            "A recent code or configuration change fails a subset of requests",
            "A traffic change (new client, retry storm) hits an unhandled path",
        ]
    )
    checks = [
        _health(f),
        _step(
            "check_error_rate",
            "metrics.query",
            {
                "query": _error_rate_query(f.service),
                "lookback_minutes": 120,
            },
        ),
        _logs(f, "error"),
    ]
    actions = [
        _notify(f, "error_rate_spike", "error rate spike under investigation"),
        _restart(
            "Restarting clears bad in-memory state; if the spike follows a deploy, "
            "redeploying the previous release is the real fix. Needs approval."
        ),
    ]
    rollback = (
        "If the restart makes things worse, the machines come back with the same release; "
        "redeploy the last known-good release through the normal deploy pipeline. "
        "Notifications need no rollback."
    )
    return checks, actions, hypotheses, rollback


def _service_down(f: Facts) -> tuple[list, list, list[str], str]:
    hypotheses = [
        f"The {f.system} processes crashed or are stuck and fail their health checks",
        "A dependency the service needs at startup (database, secrets, network) is unavailable",
        "A recent change broke startup or the health endpoint",
    ]
    checks = [_health(f), _logs(f, "error", "search_crash_logs")]
    if "prometheus" in f.target_kinds:
        job = f'{{job="{f.service}"}}' if f.service else ""
        checks.append(
            _step("check_up", "metrics.query", {"query": f"up{job}", "lookback_minutes": 30})
        )
    actions = [
        _notify(f, "service_down", "service down, investigating"),
        _restart(
            "A restart recovers crashed or wedged processes; approve it after the "
            "health check and logs rule out a dependency outage."
        ),
    ]
    rollback = (
        "A restart cannot be undone, but it changes no code or data; if the service does "
        "not come back, redeploy the last known-good release and escalate."
    )
    return checks, actions, hypotheses, rollback


def _pool(f: Facts) -> tuple[list, list, list[str], str]:
    hypotheses = [
        "Connections are held by long-running or idle-in-transaction sessions",
        "A traffic increase or a missing pool limit opened more connections than allowed",
        "A connection leak in the application never returns connections to the pool",
    ]
    checks = [
        _step("check_connections", "database.connection_count", {}),
        _step(
            "check_slow_queries",
            "database.slow_queries",
            {"min_duration_ms": _slow_threshold_ms(f), "limit": 20},
        ),
    ]
    older = _kill_after(f)
    actions = [
        _act(
            "cancel_stuck_queries",
            "database.kill_query",
            {"older_than_seconds": older},
            safe=False,
            rationale=f"Cancelling queries older than {older}s returns their connections to "
            "the pool; it also cancels legitimate long work, so a human confirms first.",
        ),
        _notify(f, "resource_exhaustion", "database connection pool exhausted"),
    ]
    rollback = (
        "Cancelled queries are not rolled back by anything: clients must retry them. If "
        "cancelling does not free the pool, stop and look for the leaking client instead."
    )
    return checks, actions, hypotheses, rollback


def _cache(f: Facts) -> tuple[list, list, list[str], str]:
    stampede = bool({"stampede", "thundering herd"} & f.mentions)
    hypotheses = (
        [
            "Many hot keys expired together and every request recomputes them at once",
            "Cache TTLs are aligned, so expiries come in waves",
            "The backing store is too slow to refill the cache under load",
        ]
        if stampede
        else [
            "Cached entries were not invalidated after the underlying data changed",
            "A writer path skips cache invalidation",
            "TTLs are too long for how often the data changes",
        ]
    )
    checks = [_health(f)]
    if "prometheus" in f.target_kinds:
        checks.append(
            _step(
                "check_cache_misses",
                "metrics.query",
                {"query": "sum(rate(redis_keyspace_misses_total[5m]))", "lookback_minutes": 60},
            )
        )
    checks.append(_logs(f, "cache", "search_cache_logs"))
    actions = [_notify(f, "cache_issue", "cache problem under investigation")]
    pattern = f.cache_pattern or (f"{f.service.lower()}:*" if f.service else "")
    if pattern:
        actions.append(
            _act(
                "invalidate_cache",
                "cache.invalidate",
                {"pattern": pattern, "max_keys": 10_000},
                # Text from the incident never makes a deletion safe, and during a
                # stampede invalidation adds load: a human approves it.
                safe=False,
                rationale=f"Deleting keys matching {pattern} forces fresh values from the "
                "source of truth."
                + (
                    " During a stampede this adds load, so approve it deliberately."
                    if stampede
                    else ""
                ),
            )
        )
    rollback = (
        "Deleted cache keys are refilled from the source of truth on the next read; if the "
        "refill overloads the backend, rate-limit the callers or warm the keys gradually."
    )
    return checks, actions, hypotheses, rollback


def _host_pressure(f: Facts) -> tuple[list, list, list[str], str]:
    memory = bool(
        {"out of memory", "oom", "oomkilled", "memory", "memory leak", "swap"} & f.mentions
    )
    hypotheses = (
        [
            f"A memory leak in {f.system} grows until the process is killed",
            "A workload change (bigger batches, more concurrency) needs more memory",
            "The memory limit is lower than the service needs",
        ]
        if memory
        else [
            "Logs, temporary files or old artifacts filled the disk",
            "A database or queue grew faster than the volume",
            "Inodes ran out because of many small files",
        ]
    )
    checks = [_health(f)]
    if "prometheus" in f.target_kinds:
        query = (
            "max(process_resident_memory_bytes)"
            if memory
            else "min(node_filesystem_avail_bytes / node_filesystem_size_bytes)"
        )
        checks.append(
            _step("check_resource", "metrics.query", {"query": query, "lookback_minutes": 360})
        )
    checks.append(_logs(f, "out of memory" if memory else "no space left", "search_resource_logs"))
    actions = [_notify(f, "resource_exhaustion", "memory or disk pressure")]
    if memory:
        actions.append(
            _restart(
                "A restart releases leaked memory for a while; it buys time, it "
                "does not fix the leak. Needs approval."
            )
        )
    rollback = (
        "A restart changes no code or data; if memory grows again, roll back to the last "
        "release without the leak. Nothing here deletes files."
    )
    return checks, actions, hypotheses, rollback


def _security(f: Facts) -> tuple[list, list, list[str], str]:
    hypotheses = [
        "Credentials or tokens were exposed and are being used by someone else",
        "An attacker is probing or brute-forcing an exposed endpoint",
        "The activity is legitimate but unusual (a new integration or an admin task)",
    ]
    checks = [
        _logs(f, "unauthorized", "search_auth_failures"),
        _health(f),
        _step("check_connections", "database.connection_count", {}),
    ]
    actions = [
        _notify(
            f, "security_incident", "suspected security incident; preserve evidence, do not restart"
        )
    ]
    rollback = (
        "Nothing destructive is proposed, so there is nothing to undo. Preserve evidence: "
        "do not restart, redeploy, delete logs or invalidate caches until the security "
        "lead has taken snapshots; rotate credentials only through the security process."
    )
    return checks, actions, hypotheses, rollback


def _generic(f: Facts) -> tuple[list, list, list[str], str]:
    hypotheses = [
        f"{f.system} is degraded for a reason the incident text does not make clear",
        "A recent change or a failing dependency affects the service",
    ]
    checks = [_health(f), _logs(f, "error")]
    actions = [_notify(f, "service_degradation", "under investigation")]
    rollback = "Only read-only checks and a notification are proposed; nothing to roll back."
    return checks, actions, hypotheses, rollback


BUILDERS = {
    "performance_degradation": ("performance_degradation", _performance),
    "error_rate_spike": ("error_rate_spike", _error_spike),
    "service_down": ("service_down", _service_down),
    "connection_pool_exhaustion": ("resource_exhaustion", _pool),
    "cache_issue": ("cache_issue", _cache),
    "host_resource_pressure": ("resource_exhaustion", _host_pressure),
    "security_incident": ("security_incident", _security),
}


def _allowed(steps: list[dict | None], offered: dict[str, list[str]]) -> list[dict]:
    """Keep only steps the executor allows here, with params its schema accepts, and a
    target to run on for this service (`offered`, from the generator's catalog)."""
    out = []
    for step in steps:
        if step is None or step["action"] not in offered:
            continue
        spec = offer().get_spec(step["action"])
        if spec is None or spec.validate_params(step["params"]):
            continue
        out.append(step)
    return out


def _classify(words: list[str]) -> tuple[Scenario | None, float, dict[str, float], set[str]]:
    """(best scenario or None, its score, all scores, its matched keywords)."""
    scored = {s.incident_type: _score(s, words) for s in SCENARIOS}
    scores = {name: score for name, (score, _) in scored.items()}
    best = max(SCENARIOS, key=lambda s: scores[s.incident_type])  # first wins ties
    if scores[best.incident_type] <= 0:
        return None, 0.0, scores, set()
    return best, scores[best.incident_type], scores, scored[best.incident_type][1]


def plan_offline(*, incident: Any, context: dict | None = None) -> dict:
    """A contract-valid runbook for `incident`, from its text alone. Deterministic."""
    f = _facts(incident, context)
    scenario, score, scores, f.mentions = _classify(f.words)
    if scenario is not None:
        incident_type, build = BUILDERS[scenario.incident_type]
        default_system = scenario.default_system
    else:
        incident_type, build, default_system = "service_degradation", _generic, "application"
    f.system = _system(f.text, f.service, default_system)

    checks, actions, hypotheses, rollback = build(f)
    # The same view of actions and targets that Claude gets for this service.
    offered = offer().step_targets(f.service)
    checks = _allowed(checks, offered)
    actions = _allowed(actions, offered)

    # 0.3 for a bare guess up to 0.8 for a strong match; less when another scenario is close.
    confidence = 0.3 + 0.5 * min(1.0, score / 8.0)
    runner_up = sorted(scores.values(), reverse=True)[1] if len(scores) > 1 else 0.0
    if score and runner_up >= 0.75 * score:
        confidence -= 0.1
    confidence = round(min(0.8, max(0.3, confidence)), 2)

    return {
        "incident_type": incident_type,
        "affected_system": f.system[:200],
        "confidence": confidence,
        "hypotheses": [h[:500] for h in hypotheses[:10]],
        "checks": checks,
        "recommended_actions": actions,
        "rollback_plan": rollback[:2000],
    }
