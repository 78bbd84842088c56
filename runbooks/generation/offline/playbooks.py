"""Where the offline planner picks its checks and actions: one playbook per scenario.

A scenario is scored against the incident text by its keywords; the chosen one
builds the hypotheses, checks, actions and rollback plan from the facts. Steps
that need an identifier the text did not give are built as None and dropped
later, together with anything the executor does not offer here.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .facts import Facts, matches
from .steps import (
    act,
    error_rate_query,
    health,
    kill_after,
    label,
    logs,
    notify,
    restart,
    slow_threshold_ms,
    step,
)
from .vocabulary import (
    CACHE_ISSUE_KEYWORDS,
    CONNECTION_POOL_EXHAUSTION_KEYWORDS,
    DEPLOY_WORDS,
    ERROR_RATE_SPIKE_KEYWORDS,
    HOST_RESOURCE_PRESSURE_KEYWORDS,
    MEMORY_WORDS,
    PERFORMANCE_DEGRADATION_KEYWORDS,
    SECURITY_INCIDENT_KEYWORDS,
    SERVICE_DOWN_KEYWORDS,
    STAMPEDE_WORDS,
)


class Plan(NamedTuple):
    """What a playbook proposes, before the executor's filter."""

    checks: list[dict | None]
    actions: list[dict | None]
    hypotheses: list[str]
    rollback: str


@dataclass(frozen=True)
class Scenario:
    name: str  # what the text is scored for
    incident_type: str  # what the runbook reports; several scenarios share one
    keywords: Mapping[str, float]  # word or phrase → weight
    default_system: str
    build: Callable[[Facts], Plan]


def _performance(f: Facts) -> Plan:
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
        step(
            "check_slow_queries",
            "database.slow_queries",
            {"min_duration_ms": slow_threshold_ms(f), "limit": 20},
        )
    ]
    if f.table:
        checks.append(step("check_table_stats", "database.table_stats", {"table": f.table}))
    checks.append(step("check_connections", "database.connection_count", {}))
    if "prometheus" in f.target_kinds:
        checks.append(
            step(
                "check_latency",
                "metrics.query",
                {
                    "query": "histogram_quantile(0.99, sum by (le) (rate("
                    f"http_request_duration_seconds_bucket{label(f.service)}[5m])))",
                    "lookback_minutes": 60,
                },
            )
        )
    actions = []
    if f.table:
        # During a SEV1 a second person confirms every change, even a reversible one:
        # ANALYZE on a hot table competes for the I/O the incident is short of.
        critical = f.severity == "SEV1"
        actions.append(
            act(
                "recompute_stats",
                "database.analyze_table",
                {"table": f.table},
                safe=not critical,
                rationale=f"Fresh statistics let the planner pick good plans for {f.table}; "
                "ANALYZE only reads the table and updates statistics."
                + (" During a SEV1 a second person confirms it first." if critical else ""),
            )
        )
        # SQLite's counterpart of cancelling queries: offered only where a sqlite target is.
        actions.append(
            act(
                "rewrite_database",
                "database.vacuum",
                {},
                safe=False,
                rationale=f"Rewriting the database file gives back the pages of deleted rows "
                f"and puts {f.table} in order again, which speeds up its scans; writers wait "
                "while it runs and it cannot be undone, so an approver confirms it first.",
            )
        )
    older = kill_after(f)
    actions.append(
        act(
            "cancel_stuck_queries",
            "database.kill_query",
            {"older_than_seconds": older},
            safe=False,
            rationale=f"Cancelling queries running longer than {older}s frees the database, "
            "but it also cancels legitimate long work: a human should confirm after "
            "reading the slow-query check.",
        )
    )
    actions.append(notify(f, "performance_degradation", "slow queries under investigation"))
    rollback = (
        "ANALYZE only refreshes planner statistics; if plans get worse, run ANALYZE again "
        "after the data settles or restore the previous statistics targets. Cancelled "
        "queries are not rolled back by anything: their clients must retry them, so tell "
        "the owners of any cancelled job."
    )
    return Plan(checks, actions, hypotheses, rollback)


def _error_spike(f: Facts) -> Plan:
    deploy = any(matches(f.words, k) for k in DEPLOY_WORDS)
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
        health(f),
        step(
            "check_error_rate",
            "metrics.query",
            {
                "query": error_rate_query(f.service),
                "lookback_minutes": 120,
            },
        ),
        logs(f, "error"),
    ]
    actions = [
        notify(f, "error_rate_spike", "error rate spike under investigation"),
        restart(
            "Restarting clears bad in-memory state; if the spike follows a deploy, "
            "redeploying the previous release is the real fix. Needs approval."
        ),
    ]
    rollback = (
        "If the restart makes things worse, the machines come back with the same release; "
        "redeploy the last known-good release through the normal deploy pipeline. "
        "Notifications need no rollback."
    )
    return Plan(checks, actions, hypotheses, rollback)


def _service_down(f: Facts) -> Plan:
    hypotheses = [
        f"The {f.system} processes crashed or are stuck and fail their health checks",
        "A dependency the service needs at startup (database, secrets, network) is unavailable",
        "A recent change broke startup or the health endpoint",
    ]
    checks = [health(f), logs(f, "error", "search_crash_logs")]
    if "prometheus" in f.target_kinds:
        job = f'{{job="{f.service}"}}' if f.service else ""
        checks.append(
            step("check_up", "metrics.query", {"query": f"up{job}", "lookback_minutes": 30})
        )
    actions = [
        notify(f, "service_down", "service down, investigating"),
        restart(
            "A restart recovers crashed or wedged processes; approve it after the "
            "health check and logs rule out a dependency outage."
        ),
    ]
    rollback = (
        "A restart cannot be undone, but it changes no code or data; if the service does "
        "not come back, redeploy the last known-good release and escalate."
    )
    return Plan(checks, actions, hypotheses, rollback)


def _pool(f: Facts) -> Plan:
    hypotheses = [
        "Connections are held by long-running or idle-in-transaction sessions",
        "A traffic increase or a missing pool limit opened more connections than allowed",
        "A connection leak in the application never returns connections to the pool",
    ]
    checks = [
        step("check_connections", "database.connection_count", {}),
        step(
            "check_slow_queries",
            "database.slow_queries",
            {"min_duration_ms": slow_threshold_ms(f), "limit": 20},
        ),
    ]
    older = kill_after(f)
    actions = [
        act(
            "cancel_stuck_queries",
            "database.kill_query",
            {"older_than_seconds": older},
            safe=False,
            rationale=f"Cancelling queries older than {older}s returns their connections to "
            "the pool; it also cancels legitimate long work, so a human confirms first.",
        ),
        notify(f, "resource_exhaustion", "database connection pool exhausted"),
    ]
    rollback = (
        "Cancelled queries are not rolled back by anything: clients must retry them. If "
        "cancelling does not free the pool, stop and look for the leaking client instead."
    )
    return Plan(checks, actions, hypotheses, rollback)


def _cache(f: Facts) -> Plan:
    stampede = bool(STAMPEDE_WORDS & f.mentions)
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
    checks = [health(f)]
    if "prometheus" in f.target_kinds:
        checks.append(
            step(
                "check_cache_misses",
                "metrics.query",
                {"query": "sum(rate(redis_keyspace_misses_total[5m]))", "lookback_minutes": 60},
            )
        )
    checks.append(logs(f, "cache", "search_cache_logs"))
    actions = [notify(f, "cache_issue", "cache problem under investigation")]
    pattern = f.cache_pattern or (f"{f.service.lower()}:*" if f.service else "")
    if pattern:
        actions.append(
            act(
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
    return Plan(checks, actions, hypotheses, rollback)


def _host_pressure(f: Facts) -> Plan:
    memory = bool(MEMORY_WORDS & f.mentions)
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
    checks = [health(f)]
    if "prometheus" in f.target_kinds:
        query = (
            "max(process_resident_memory_bytes)"
            if memory
            else "min(node_filesystem_avail_bytes / node_filesystem_size_bytes)"
        )
        checks.append(
            step("check_resource", "metrics.query", {"query": query, "lookback_minutes": 360})
        )
    checks.append(logs(f, "out of memory" if memory else "no space left", "search_resource_logs"))
    actions = [notify(f, "resource_exhaustion", "memory or disk pressure")]
    if memory:
        actions.append(
            restart(
                "A restart releases leaked memory for a while; it buys time, it "
                "does not fix the leak. Needs approval."
            )
        )
    rollback = (
        "A restart changes no code or data; if memory grows again, roll back to the last "
        "release without the leak. Nothing here deletes files."
    )
    return Plan(checks, actions, hypotheses, rollback)


def _security(f: Facts) -> Plan:
    hypotheses = [
        "Credentials or tokens were exposed and are being used by someone else",
        "An attacker is probing or brute-forcing an exposed endpoint",
        "The activity is legitimate but unusual (a new integration or an admin task)",
    ]
    checks = [
        logs(f, "unauthorized", "search_auth_failures"),
        health(f),
        step("check_connections", "database.connection_count", {}),
    ]
    actions = [
        notify(
            f, "security_incident", "suspected security incident; preserve evidence, do not restart"
        )
    ]
    rollback = (
        "Nothing destructive is proposed, so there is nothing to undo. Preserve evidence: "
        "do not restart, redeploy, delete logs or invalidate caches until the security "
        "lead has taken snapshots; rotate credentials only through the security process."
    )
    return Plan(checks, actions, hypotheses, rollback)


def _generic(f: Facts) -> Plan:
    hypotheses = [
        f"{f.system} is degraded for a reason the incident text does not make clear",
        "A recent change or a failing dependency affects the service",
    ]
    checks = [health(f), logs(f, "error")]
    actions = [notify(f, "service_degradation", "under investigation")]
    rollback = "Only read-only checks and a notification are proposed; nothing to roll back."
    return Plan(checks, actions, hypotheses, rollback)


# Scored in this order; the first wins a tie.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "security_incident",
        "security_incident",
        SECURITY_INCIDENT_KEYWORDS,
        "application",
        _security,
    ),
    Scenario(
        "performance_degradation",
        "performance_degradation",
        PERFORMANCE_DEGRADATION_KEYWORDS,
        "database",
        _performance,
    ),
    Scenario(
        "error_rate_spike",
        "error_rate_spike",
        ERROR_RATE_SPIKE_KEYWORDS,
        "application",
        _error_spike,
    ),
    Scenario("service_down", "service_down", SERVICE_DOWN_KEYWORDS, "application", _service_down),
    Scenario(
        "connection_pool_exhaustion",
        "resource_exhaustion",
        CONNECTION_POOL_EXHAUSTION_KEYWORDS,
        "database",
        _pool,
    ),
    Scenario("cache_issue", "cache_issue", CACHE_ISSUE_KEYWORDS, "cache", _cache),
    Scenario(
        "host_resource_pressure",
        "resource_exhaustion",
        HOST_RESOURCE_PRESSURE_KEYWORDS,
        "host",
        _host_pressure,
    ),
)
# When no scenario's keywords match at all.
GENERIC = Scenario("service_degradation", "service_degradation", {}, "application", _generic)
