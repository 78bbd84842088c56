"""PostgreSQL and SQLite checks and actions: catalog views, ANALYZE, cancelling queries."""

import time
from datetime import datetime
from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import postgres as pg
from executor.connectors import sqlite as lite
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult, StepTimeout

from .params import TABLE_PARAMS, check_schema_name, check_table_name

PLAN_SECONDS = 5.0  # a dry-run may read the catalog, briefly
DEAD_ROWS_WARN = 0.20
PARTITIONS_WARN = 1000
CONNECTIONS_WARN_PERCENT = 80.0


# --- formatting ---------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _seconds(ms: int | float | None) -> str:
    return "?" if ms is None else f"{ms / 1000:.1f} s"


def _one_line(text: str | None, limit: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(target: Any) -> str:
    return f"target {target.name}" if target is not None else "the target"


def _need(target: Any, kinds: tuple[str, ...]) -> None:
    if target is None or getattr(target, "kind", "") not in kinds:
        raise StepBlocked(f"this step needs a {' or '.join(kinds)} target")


def _table_params(params: dict) -> tuple[str | None, str]:
    """(schema or None, table) as given, refused when either names the system's own."""
    table = check_table_name(params.get("table"))
    schema = params.get("schema")
    return (None if schema is None else check_schema_name(schema)), table


def _pg_table(s: pg.PgSession, params: dict) -> tuple[str, str]:
    """The table the params name on the live target, within the target's own schemas."""
    schema, table = _table_params(params)
    return pg.resolve_table(s, schema=schema, table=table)


def _sqlite_table(params: dict) -> str:
    # SQLite has one schema for our purposes; "public" is the generic default planners use.
    if params.get("schema") not in (None, "main", "public"):
        raise StepBlocked("a SQLite target has no schemas other than main")
    return check_table_name(params.get("table"))


def _last_analyzed(stats: dict) -> str | None:
    stamps = [stats.get("last_analyze"), stats.get("last_autoanalyze")]
    parsed = [datetime.fromisoformat(s) for s in stamps if s]
    return max(parsed).isoformat() if parsed else None


def _when(stamp: str | None) -> str:
    if not stamp:
        return "never"
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _row_estimate(stats: dict) -> tuple[int | None, str]:
    if stats.get("reltuples") is not None:
        return stats["reltuples"], "pg_class.reltuples"
    # Before the first ANALYZE or VACUUM reltuples is unknown; the live-row counter is
    # the next best thing, but a 0 there may just mean the counters are not flushed yet.
    if stats.get("live_rows"):
        return stats["live_rows"], "pg_stat n_live_tup"
    return None, ""


# --- checks -------------------------------------------------------------------------


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
            f"Read pg_stat_activity on {_where(target)}: client queries running longer than "
            f"{ms} ms (top {limit}), and pg_stat_statements' slowest statements when the "
            "extension is installed. Read-only."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        _need(target, ("postgres",))
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
    name="database.table_stats",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Size, row estimate, dead rows, partitions, scans and last analyze/vacuum of one table.",
    params=TABLE_PARAMS,
    targets=("postgres", "sqlite"),
)
class TableStats:
    def plan(self, params: dict, target: Any) -> str:
        try:
            _table_params(params)
        except StepBlocked as exc:
            return f"Would refuse to read table {params.get('table')!r}: {exc}."
        return (
            f"Read the catalog and statistics of table {params.get('table')} on {_where(target)}, "
            "if it lies in the target's own schemas. Read-only."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        _need(target, ("postgres", "sqlite"))
        if target.kind == "sqlite":
            return self._sqlite(params, target, deadline)
        _table_params(params)  # refused before connecting
        with pg.connect(target, deadline) as s:
            schema, table = _pg_table(s, params)
            stats = pg.table_stats(s, schema=schema, table=table)
        return _pg_table_result(stats)

    def _sqlite(self, params: dict, target: Any, deadline: float) -> StepResult:
        table = _sqlite_table(params)
        with lite.connect(target, deadline) as conn:
            stats = lite.table_stats(conn, table)
        if stats["table_bytes"] is not None:
            size = _size(stats["table_bytes"])
        else:
            size = f"database {_size(stats['database_bytes'])}"
        n_idx = len(stats["indexes"])
        summary = (
            f"Table {stats['table']}: {stats['rows']:,} rows, {n_idx} "
            f"{'index' if n_idx == 1 else 'indexes'}, {size}, "
            + ("analyzed (sqlite_stat1)" if stats["analyzed"] else "not analyzed (no sqlite_stat1)")
        )
        text = "\n".join(
            [summary]
            + [
                f"index {i['name']}{' unique' if i['unique'] else ''} ({i['origin']})"
                for i in stats["indexes"]
            ]
            + [f"size from {stats['size_source']}"]
        )
        return StepResult(outcome="ok", summary=summary, data=stats, text=text)


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _pg_table_result(stats: dict) -> StepResult:
    name = pg.qualified(stats["schema"], stats["table"])
    rows, rows_source = _row_estimate(stats)
    last = _last_analyzed(stats)
    stats["last_analyzed"] = last
    stats["row_estimate"] = rows
    stats["row_estimate_source"] = rows_source
    live, dead = stats.get("live_rows") or 0, stats.get("dead_rows") or 0
    dead_ratio = dead / (live + dead) if (live + dead) else 0.0
    stats["dead_ratio"] = round(dead_ratio, 4)
    parts = [f"~{rows:,} rows" if rows is not None else "row count unknown"]
    if stats["partitions"]:
        parts.append(f"{stats['partitions']:,} partitions")
    parts += [
        _size(stats["total_bytes"]),
        f"{dead:,} dead rows",
        f"last analyzed {_when(last)}",
    ]
    warnings = []
    if dead_ratio > DEAD_ROWS_WARN:
        warnings.append(f"{dead_ratio:.0%} of rows are dead")
    if last is None and (rows or live):
        warnings.append("never analyzed")
    if stats["partitions"] > PARTITIONS_WARN:
        warnings.append(f"more than {PARTITIONS_WARN} partitions")
    stats["warnings"] = warnings
    summary = f"Table {name}: " + ", ".join(parts)
    if warnings:
        summary += " (" + "; ".join(warnings) + ")"
    text = "\n".join(
        [
            summary,
            f"kind: {stats['kind']}",
            f"sequential scans: {_or_dash(stats['seq_scan'])}, "
            f"index scans: {_or_dash(stats['idx_scan'])}",
            f"last analyze: {_when(stats['last_analyze'])}, "
            f"last autoanalyze: {_when(stats['last_autoanalyze'])}",
            f"last vacuum: {_when(stats['last_vacuum'])}, "
            f"last autovacuum: {_when(stats['last_autovacuum'])}",
        ]
    )
    return StepResult(outcome="warn" if warnings else "ok", summary=summary, data=stats, text=text)


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
        return f"Count client connections by state on {_where(target)} against max_connections. Read-only."

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        _need(target, ("postgres",))
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


# --- actions ------------------------------------------------------------------------


@register(
    name="database.analyze_table",
    kind=StepKind.ACTION,
    safety=Safety.REVERSIBLE,
    description="Recompute planner statistics for one table (ANALYZE).",
    params=TABLE_PARAMS,
    targets=("postgres", "sqlite"),
)
class AnalyzeTable:
    def plan(self, params: dict, target: Any) -> str:
        table = params.get("table")
        try:
            _table_params(params)
        except StepBlocked as exc:
            return f"Would refuse to run ANALYZE on table {table!r}: {exc}."
        if target is None or target.kind not in ("postgres", "sqlite"):
            return f"Would run ANALYZE on table {table} (no target resolved)."
        deadline = time.monotonic() + PLAN_SECONDS
        try:
            if target.kind == "sqlite":
                checked = _sqlite_table(params)
                with lite.connect(target, deadline) as conn:
                    stat1 = lite.stat1(conn, checked)
                return (
                    f"Would run ANALYZE on table {table} on target {target.name} "
                    f"({target.display_url}); it has {len(stat1)} sqlite_stat1 rows now."
                )
            with pg.connect(target, deadline) as s:
                schema, table = _pg_table(s, params)
                stats = pg.table_stats(s, schema=schema, table=table)
        except StepBlocked as exc:
            return f"Would refuse to run ANALYZE on table {table} on target {target.name}: {exc}"
        except StepError as exc:
            return f"Would run ANALYZE on table {table} on target {target.name}; cannot read it now: {exc}"
        rows, _ = _row_estimate(stats)
        return (
            f"Would run ANALYZE {schema}.{table} on target {target.name} ({target.display_url}): "
            f"now {_fmt_rows(rows)} rows, "
            f"last analyzed {_when(_last_analyzed(stats))}. ANALYZE reads a sample of rows "
            "and takes a SHARE UPDATE EXCLUSIVE lock (reads and writes continue)."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        _need(target, ("postgres", "sqlite"))
        if target.kind == "sqlite":
            return self._sqlite(params, target, deadline)
        _table_params(params)  # refused before connecting
        with pg.connect(target, deadline) as s:
            schema, table = _pg_table(s, params)
            before = pg.table_stats(s, schema=schema, table=table)
            pg.analyze(s, schema=schema, table=table)
            after = pg.table_stats(s, schema=schema, table=table)
        keys = ("reltuples", "last_analyze", "last_autoanalyze")
        b = {k: before[k] for k in keys}
        a = {k: after[k] for k in keys}
        name = pg.qualified(schema, table)
        changed = a["last_analyze"] != b["last_analyze"]
        summary = (
            f"ANALYZE {name}: row estimate {_fmt_rows(b['reltuples'])} → {_fmt_rows(a['reltuples'])}, "
            f"last analyzed {_when(b['last_analyze'])} → {_when(a['last_analyze'])}"
        )
        if not changed:
            summary += " (last_analyze did not move: statistics may be disabled)"
        return StepResult(
            outcome="ok" if changed else "warn",
            summary=summary,
            data={"schema": schema, "table": table, "before": b, "after": a},
            text=summary,
        )

    def _sqlite(self, params: dict, target: Any, deadline: float) -> StepResult:
        table = _sqlite_table(params)
        with lite.connect(target, deadline, write=True) as conn:
            before = lite.stat1(conn, table)
            lite.analyze(conn, table)
            after = lite.stat1(conn, table)
        summary = f"ANALYZE {table}: sqlite_stat1 rows {len(before)} → {len(after)}"
        text = "\n".join([summary] + [f"  {r['index'] or '(table)'}: {r['stat']}" for r in after])
        return StepResult(
            outcome="ok",
            summary=summary,
            data={"table": table, "before": before, "after": after},
            text=text,
        )


def _fmt_rows(n: int | None) -> str:
    return "unknown" if n is None else f"~{n:,}"


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
        _need(target, ("postgres",))
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
