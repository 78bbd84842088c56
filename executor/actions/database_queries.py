"""PostgreSQL checks and actions on what the server is running: slow queries,
connections, cancelling queries."""

import time
from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import postgres as pg
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult, StepTimeout

from .database_common import PLAN_SECONDS, need, where

CONNECTIONS_WARN_PERCENT = 80.0


def _seconds(ms: int | float | None) -> str:
    return "?" if ms is None else f"{ms / 1000:.1f} s"


def _one_line(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register(
    name="database.slow_queries",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Queries running longer than a threshold (pg_stat_activity), and the slowest "
    "statements on record (pg_stat_statements when installed).",
    params={
        "type": "object",
        "properties": {
            "min_duration_ms": {"type": "integer", "minimum": 0, "maximum": 3_600_000},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        },
    },
    targets=("postgres",),
    normalize=seed_params.dropped("lookback_minutes"),
)
class SlowQueries:
    def plan(self, params: dict, target: Any) -> str:
        ms, limit = params.get("min_duration_ms", 1000), params.get("limit", 10)
        return (
            f"Read pg_stat_activity on {where(target)}: client queries running longer than "
            f"{ms} ms (top {limit}), and pg_stat_statements' slowest statements when the "
            "extension is installed. Read-only."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        need(target, ("postgres",))
        ms, limit = int(params.get("min_duration_ms", 1000)), int(params.get("limit", 10))
        with pg.connect(target, deadline) as s:
            total, rows = pg.slow_queries(s, min_duration_ms=ms, limit=limit)
            statements = pg.statements_top(s, limit=min(limit, 10))
        lines = [
            f"pid {r['pid']}  {_seconds(r['duration_ms'])}  {r['state']}  "
            f"wait={r['wait_event_type'] or '-'}/{r['wait_event'] or '-'}  "
            f"{r['user']}@{r['database']}: {_one_line(r['query'], 300)}"
            for r in rows
        ]
        if statements.get("available"):
            lines.append("")
            lines.append("pg_stat_statements, slowest by mean time:")
            lines += [
                f"  {st['mean_ms']} ms mean × {st['calls']} calls: {_one_line(st['query'], 300)}"
                for st in statements["top"]
            ]
        else:
            lines.append(f"pg_stat_statements: not used ({statements['reason']})")
        if total:
            first = rows[0]
            summary = (
                f"{total} {'query' if total == 1 else 'queries'} running longer than {ms} ms; "
                f"longest {_seconds(first['duration_ms'])} (pid {first['pid']}, {first['state']}"
                + (f", waiting on {first['wait_event']}" if first["wait_event"] else "")
                + ")"
            )
        else:
            summary = f"No client query running longer than {ms} ms"
        return StepResult(
            outcome="warn" if total else "ok",
            summary=summary,
            data={
                "min_duration_ms": ms,
                "count": total,
                "queries": rows,
                "statements": statements,
            },
            text="\n".join(lines),
        )


@register(
    name="database.connection_count",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Connections by state against max_connections; warns above 80% use.",
    params={"type": "object", "properties": {}},
    targets=("postgres",),
)
class ConnectionCount:
    def plan(self, params: dict, target: Any) -> str:
        return f"Count client connections by state on {where(target)} against max_connections. Read-only."

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        need(target, ("postgres",))
        with pg.connect(target, deadline) as s:
            counts = pg.connection_counts(s)
        percent = round(100.0 * counts["total"] / counts["max_connections"], 1)
        counts["percent_used"] = percent
        by_state = ", ".join(f"{n} {state}" for state, n in counts["by_state"].items())
        summary = (
            f"{counts['total']} of {counts['max_connections']} connections in use "
            f"({percent:.0f}%): {by_state}"
        )
        warn = percent > CONNECTIONS_WARN_PERCENT
        if warn:
            summary += f" (above {CONNECTIONS_WARN_PERCENT:.0f}%)"
        text = "\n".join(
            [summary, "(this check's own connection is included)", "by database:"]
            + [f"  {db or '-'}: {n}" for db, n in counts["by_database"].items()]
        )
        return StepResult(outcome="warn" if warn else "ok", summary=summary, data=counts, text=text)


@register(
    name="database.kill_query",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Cancel running queries (pg_cancel_backend) of the target's own database: one "
    "backend by pid, or every client query running longer than older_than_seconds.",
    params={
        "type": "object",
        "properties": {
            "pid": {"type": "integer", "minimum": 1},
            "older_than_seconds": {"type": "integer", "minimum": 1, "maximum": 86_400},
        },
        "oneOf": [{"required": ["pid"]}, {"required": ["older_than_seconds"]}],
    },
    targets=("postgres",),
    normalize=seed_params.renamed("query_id", "pid", seed_params.backend_pid),
)
class KillQuery:
    def plan(self, params: dict, target: Any) -> str:
        pid, older = params.get("pid"), params.get("older_than_seconds")
        what = (
            f"the query of pid {pid}"
            if pid is not None
            else f"every active client query older than {older} s"
        )
        if target is None or target.kind != "postgres":
            return f"Would cancel {what} with pg_cancel_backend (no target resolved)."
        try:
            with pg.connect(target, time.monotonic() + PLAN_SECONDS) as s:
                if pid is not None:
                    rows = [pg.refuse_pid(s, pid)]
                else:
                    rows = pg.old_queries(s, older_than_seconds=older)
        except StepBlocked as exc:
            return f"Would refuse to cancel {what} on target {target.name}: {exc}"
        except StepError as exc:
            return f"Would cancel {what} on target {target.name}; right now: {exc}"
        head = (
            f"Would cancel {len(rows)} {'query' if len(rows) == 1 else 'queries'} on target "
            f"{target.name} ({target.display_url}) with pg_cancel_backend; the sessions stay "
            "connected, their transactions roll back."
        )
        if not rows:
            return (
                f"Nothing would be cancelled right now on target {target.name}: "
                f"no active client query is older than {older} s."
            )
        return "\n".join([head] + [_backend_line(r) for r in rows])

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        need(target, ("postgres",))
        pid, older = params.get("pid"), params.get("older_than_seconds")
        if (pid is None) == (older is None):
            raise StepBlocked("give either pid or older_than_seconds")
        with pg.connect(target, deadline) as s:
            if pid is not None:
                row = pg.refuse_pid(s, int(pid))
                sent = pg.cancel(s, int(pid))
                outcome = "ok" if sent else "warn"
                summary = (
                    f"Cancel sent to pid {pid} ({_one_line(row['query'], 80)})"
                    if sent
                    else f"pid {pid} was gone or changed before it could be cancelled"
                )
                return StepResult(
                    outcome=outcome,
                    summary=summary,
                    data={"cancelled": [pid] if sent else [], "failed": [], "candidates": [row]},
                    text=_backend_line(row),
                )
            candidates = pg.old_queries(s, older_than_seconds=int(older))
            cancelled, failed, gone = [], [], []
            for r in candidates:
                try:
                    sent = pg.cancel(s, r["pid"], older_than_seconds=int(older))
                except StepTimeout:
                    raise
                except StepError as exc:  # e.g. no permission for another role's backend
                    failed.append({"pid": r["pid"], "error": str(exc)})
                    continue
                if sent:
                    cancelled.append(r["pid"])
                else:
                    gone.append(r["pid"])  # finished on its own between listing and cancel
        if not candidates:
            summary = f"No active client query older than {older} s; nothing cancelled"
        else:
            summary = (
                f"Cancelled {len(cancelled)} of {len(candidates)} queries older than {older} s"
            )
            if cancelled:
                summary += " (pids " + ", ".join(str(p) for p in cancelled[:20]) + ")"
        return StepResult(
            outcome="warn" if failed else "ok",
            summary=summary,
            data={
                "cancelled": cancelled,
                "failed": failed,
                "finished_before_cancel": gone,
                "candidates": candidates,
            },
            text="\n".join(_backend_line(r) for r in candidates),
        )


def _backend_line(r: dict) -> str:
    return (
        f"  pid {r['pid']}, running {_seconds(r.get('duration_ms'))}, {r.get('state')}, "
        f"{r.get('user')}@{r.get('database')}: {_one_line(r.get('query'), 200)}"
    )
