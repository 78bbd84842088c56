"""What differs between PostgreSQL and SQLite for the table steps, one adapter per kind.

A table step picks its adapter once by `target.kind` (`table_adapter`) and then reads
the same for every kind: refuse the params, connect, resolve the table on the live
target, read or analyze it, describe the outcome. The system-catalog refusals
themselves (pg_*, information_schema, sqlite_*) live in `params.py`; both adapters
and both connectors go through them.
"""

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from executor.connectors import postgres as pg
from executor.connectors import sqlite as lite
from executor.results import StepBlocked, StepResult

from .database_common import need
from .params import check_schema_name, check_table_name

DEAD_ROWS_WARN = 0.20
PARTITIONS_WARN = 1000
ANALYZE_KEYS = ("reltuples", "last_analyze", "last_autoanalyze")


@dataclass(frozen=True)
class TableRef:
    """A table as the params name it (schema None: the target decides) or as resolved."""

    table: str
    schema: str | None = None


def named_table(params: dict) -> TableRef:
    """The table the params name, refused when it or its schema is the system's own."""
    table = check_table_name(params.get("table"))
    schema = params.get("schema")
    return TableRef(table, None if schema is None else check_schema_name(schema))


class TableAdapter(Protocol):
    kind: str

    def table_ref(self, params: dict) -> TableRef:
        """The params' table, refused before any connection is made."""

    def connect(
        self, target: Any, deadline: float, *, write: bool = False
    ) -> AbstractContextManager[Any]:
        """A session on the target bounded by `deadline`."""

    def resolve_table(self, session: Any, ref: TableRef) -> TableRef:
        """The table on the live target; StepBlocked outside its own, StepError when absent."""

    def table_stats(self, session: Any, ref: TableRef) -> dict:
        """What the catalog says about the table."""

    def describe(self, stats: dict) -> StepResult:
        """The table_stats result for `stats`."""

    def analyze_preview(self, session: Any, ref: TableRef, target: Any) -> str:
        """The dry-run of ANALYZE, from what the table looks like now."""

    def analyze_state(self, session: Any, ref: TableRef) -> Any:
        """The statistics ANALYZE changes, read before and after it."""

    def analyze(self, session: Any, ref: TableRef) -> None:
        """Run ANALYZE on the table."""

    def describe_analyze(self, ref: TableRef, before: Any, after: Any) -> StepResult:
        """The analyze_table result from the state before and after."""


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


def _when(stamp: str | None) -> str:
    if not stamp:
        return "never"
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _fmt_rows(n: int | None) -> str:
    return "unknown" if n is None else f"~{n:,}"


def _last_analyzed(stats: dict) -> str | None:
    stamps = [stats.get("last_analyze"), stats.get("last_autoanalyze")]
    parsed = [datetime.fromisoformat(s) for s in stamps if s]
    return max(parsed).isoformat() if parsed else None


def _row_estimate(stats: dict) -> tuple[int | None, str]:
    if stats.get("reltuples") is not None:
        return stats["reltuples"], "pg_class.reltuples"
    # Before the first ANALYZE or VACUUM reltuples is unknown; the live-row counter is
    # the next best thing, but a 0 there may just mean the counters are not flushed yet.
    if stats.get("live_rows"):
        return stats["live_rows"], "pg_stat n_live_tup"
    return None, ""


# --- PostgreSQL ---------------------------------------------------------------------


class PostgresTables:
    """Tables of a PostgreSQL target, resolved within the target's own schemas."""

    kind = "postgres"

    def table_ref(self, params: dict) -> TableRef:
        return named_table(params)

    def connect(
        self, target: Any, deadline: float, *, write: bool = False
    ) -> AbstractContextManager[Any]:
        # Sessions are autocommit: ANALYZE needs no other mode.
        return pg.connect(target, deadline)

    def resolve_table(self, session: pg.PgSession, ref: TableRef) -> TableRef:
        schema, table = pg.resolve_table(session, schema=ref.schema, table=ref.table)
        return TableRef(table, schema)

    def table_stats(self, session: pg.PgSession, ref: TableRef) -> dict:
        return pg.table_stats(session, schema=ref.schema, table=ref.table)

    def describe(self, stats: dict) -> StepResult:
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
        return StepResult(
            outcome="warn" if warnings else "ok", summary=summary, data=stats, text=text
        )

    def analyze_preview(self, session: pg.PgSession, ref: TableRef, target: Any) -> str:
        stats = self.table_stats(session, ref)
        rows, _ = _row_estimate(stats)
        return (
            f"Would run ANALYZE {ref.schema}.{ref.table} on target {target.name} "
            f"({target.display_url}): now {_fmt_rows(rows)} rows, "
            f"last analyzed {_when(_last_analyzed(stats))}. ANALYZE reads a sample of rows "
            "and takes a SHARE UPDATE EXCLUSIVE lock (reads and writes continue)."
        )

    def analyze_state(self, session: pg.PgSession, ref: TableRef) -> dict:
        stats = self.table_stats(session, ref)
        return {k: stats[k] for k in ANALYZE_KEYS}

    def analyze(self, session: pg.PgSession, ref: TableRef) -> None:
        pg.analyze(session, schema=ref.schema, table=ref.table)

    def describe_analyze(self, ref: TableRef, before: dict, after: dict) -> StepResult:
        name = pg.qualified(ref.schema, ref.table)
        changed = after["last_analyze"] != before["last_analyze"]
        summary = (
            f"ANALYZE {name}: row estimate {_fmt_rows(before['reltuples'])} → "
            f"{_fmt_rows(after['reltuples'])}, "
            f"last analyzed {_when(before['last_analyze'])} → {_when(after['last_analyze'])}"
        )
        if not changed:
            summary += " (last_analyze did not move: statistics may be disabled)"
        return StepResult(
            outcome="ok" if changed else "warn",
            summary=summary,
            data={"schema": ref.schema, "table": ref.table, "before": before, "after": after},
            text=summary,
        )


# --- SQLite -------------------------------------------------------------------------


class SqliteTables:
    """Tables of a SQLite file; the connector looks each name up in sqlite_master itself."""

    kind = "sqlite"

    def table_ref(self, params: dict) -> TableRef:
        # SQLite has one schema for our purposes; "public" is the generic default planners use.
        if params.get("schema") not in (None, "main", "public"):
            raise StepBlocked("a SQLite target has no schemas other than main")
        return TableRef(check_table_name(params.get("table")))

    def connect(
        self, target: Any, deadline: float, *, write: bool = False
    ) -> AbstractContextManager[Any]:
        return lite.connect(target, deadline, write=write)

    def resolve_table(self, session: Any, ref: TableRef) -> TableRef:
        # Every connector call below checks the name against sqlite_master again.
        return ref

    def table_stats(self, session: Any, ref: TableRef) -> dict:
        return lite.table_stats(session, ref.table)

    def describe(self, stats: dict) -> StepResult:
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

    def analyze_preview(self, session: Any, ref: TableRef, target: Any) -> str:
        stat1 = self.analyze_state(session, ref)
        return (
            f"Would run ANALYZE on table {ref.table} on target {target.name} "
            f"({target.display_url}); it has {len(stat1)} sqlite_stat1 rows now."
        )

    def analyze_state(self, session: Any, ref: TableRef) -> list[dict]:
        return lite.stat1(session, ref.table)

    def analyze(self, session: Any, ref: TableRef) -> None:
        lite.analyze(session, ref.table)

    def describe_analyze(self, ref: TableRef, before: list, after: list) -> StepResult:
        summary = f"ANALYZE {ref.table}: sqlite_stat1 rows {len(before)} → {len(after)}"
        text = "\n".join([summary] + [f"  {r['index'] or '(table)'}: {r['stat']}" for r in after])
        return StepResult(
            outcome="ok",
            summary=summary,
            data={"table": ref.table, "before": before, "after": after},
            text=text,
        )


ADAPTERS: dict[str, TableAdapter] = {a.kind: a for a in (PostgresTables(), SqliteTables())}


def table_adapter(target: Any) -> TableAdapter | None:
    """The adapter for the target's kind, or None when no table step can reach it."""
    return ADAPTERS.get(getattr(target, "kind", ""))


def need_table_adapter(target: Any) -> TableAdapter:
    """The adapter for the target's kind; StepBlocked for a target no table step can reach."""
    need(target, tuple(ADAPTERS))
    return ADAPTERS[target.kind]
