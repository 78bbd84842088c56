"""PostgreSQL connector: psycopg 3 on the target's DSN, never the Django ORM.

Every query runs with `statement_timeout` at most what is left of the step's
deadline (and at most TIMEOUT_SLACK less: a session keeps the one it has while that
holds, rather than pay a round trip to the target to set it again); identifiers only
ever reach SQL through `sql.Identifier`, values are bound. Errors are mapped to
StepError / StepTimeout with the DSN scrubbed out.

Sessions that ended cleanly go back to a small per-target pool and are reused by the
next step on the same DSN (a new connection costs more than the checks it serves);
one idle longer than POOL_IDLE_SECONDS is closed rather than reused, a session that
raised is never pooled, a read-only session is only ever reused as a read-only one,
and the pool is emptied when the worker process shuts down (`close_pooled`). A
target opts out with the option `pool: false` (e.g. behind a pooler in
transaction mode).
"""

import atexit
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from executor.actions.params import (
    check_identifier,
    check_schema_name,
    check_table_name,
    is_system_schema,
)
from executor.results import StepBlocked, StepError, StepTimeout, time_left

QUERY_CHARS = 300  # query text shown per backend
MAX_CONNECT_SECONDS = 10
APPLICATION_NAME = "incident-executor"
POOL_IDLE_SECONDS = 30.0  # shorter than the usual server and pooler idle timeouts
POOL_PER_TARGET = 4  # idle sessions kept per DSN and mode
# How much shorter than the time left a statement_timeout in force may be and still be
# kept: a statement may be cancelled up to this fraction before its step's deadline,
# never after it.
TIMEOUT_SLACK = 0.05


class _Connection(psycopg.Connection):
    """A target connection that remembers the statement_timeout it was given (ms)."""

    statement_timeout_ms: int | None = None


def _scrub(message: str, target: Any) -> str:
    """An error message with the DSN and its password taken out."""
    message = str(message).strip()
    url = getattr(target, "url", "") or ""
    if url:
        message = message.replace(url, "<dsn>")
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            message = message.replace(password, "***")
    return message[:500]


class PgSession:
    """One connection to a target, with every statement bounded by the deadline."""

    def __init__(self, conn: _Connection, target: Any, deadline: float) -> None:
        self.conn = conn
        self.target = target
        self.deadline = deadline

    @property
    def backend_pid(self) -> int:
        return self.conn.info.backend_pid

    @property
    def server_version(self) -> int:
        return self.conn.info.server_version

    def _bound(self) -> None:
        # statement_timeout follows the deadline, so no statement outlives the step. The
        # one in force is kept while it is within TIMEOUT_SLACK under the time left: the
        # next step on a pooled session, or the next statement soon after, sets nothing.
        left = max(1, int(time_left(self.deadline) * 1000))
        kept = self.conn.statement_timeout_ms
        if kept is not None and left * (1 - TIMEOUT_SLACK) <= kept <= left:
            return
        ms = max(1, int(left * (1 - TIMEOUT_SLACK / 2)))
        self.conn.statement_timeout_ms = None  # unknown until the server has it
        self.conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(ms),))
        self.conn.statement_timeout_ms = ms

    def fetchall(self, query: sql.Composable | str, params: tuple | dict = ()) -> list[dict]:
        with self._errors():
            self._bound()
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []

    def fetchone(self, query: sql.Composable | str, params: tuple | dict = ()) -> dict | None:
        rows = self.fetchall(query, params)
        return rows[0] if rows else None

    def execute(self, query: sql.Composable | str, params: tuple | dict = ()) -> None:
        with self._errors():
            self._bound()
            try:
                self.conn.execute(query, params)
            finally:
                # A command may change the session's settings (RESET ALL): set it again.
                self.conn.statement_timeout_ms = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.errors.QueryCanceled as exc:
            raise StepTimeout(
                f"PostgreSQL target {self.target.name}: statement cancelled at the step deadline"
            ) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StepError(
                f"PostgreSQL target {self.target.name}: permission denied: {_scrub(exc, self.target)}"
            ) from exc
        except psycopg.OperationalError as exc:
            if time.monotonic() >= self.deadline:
                raise StepTimeout(f"PostgreSQL target {self.target.name}: timed out") from exc
            raise StepError(
                f"PostgreSQL target {self.target.name}: {_scrub(exc, self.target)}"
            ) from exc
        except psycopg.Error as exc:
            raise StepError(
                f"PostgreSQL target {self.target.name}: {_scrub(exc, self.target)}"
            ) from exc


class _Pool:
    """Idle sessions by (DSN, read-only), each with when it was last given back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: dict[tuple[str, bool], list[tuple[_Connection, float]]] = {}
        self.pid = os.getpid()

    def take(self, key: tuple[str, bool]) -> _Connection | None:
        stale: list[_Connection] = []
        found = None
        with self.lock:
            self._after_fork()
            entries = self.idle.get(key, [])
            now = time.monotonic()
            while entries:
                conn, since = entries.pop()
                if now - since > POOL_IDLE_SECONDS or conn.closed or not _idle(conn):
                    stale.append(conn)
                    continue
                found = conn
                break
            # Older entries sit at the front: any past their idle time go too.
            while entries and now - entries[0][1] > POOL_IDLE_SECONDS:
                stale.append(entries.pop(0)[0])
        for conn in stale:
            conn.close()
        return found

    def give(self, key: tuple[str, bool], conn: _Connection) -> None:
        with self.lock:
            self._after_fork()
            entries = self.idle.setdefault(key, [])
            if len(entries) < POOL_PER_TARGET and _idle(conn):
                entries.append((conn, time.monotonic()))
                return
        conn.close()

    def close_all(self) -> int:
        with self.lock:
            self._after_fork()
            conns = [conn for entries in self.idle.values() for conn, _ in entries]
            self.idle.clear()
        for conn in conns:
            conn.close()
        return len(conns)

    def _after_fork(self) -> None:
        # A forked child must not talk over its parent's sockets: it starts empty.
        if self.pid != os.getpid():
            self.idle, self.pid = {}, os.getpid()


def _idle(conn: psycopg.Connection) -> bool:
    return not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


_pool = _Pool()


def close_pooled() -> int:
    """Close every pooled session of this process (worker shutdown); how many were closed."""
    return _pool.close_all()


atexit.register(close_pooled)


def _pooled(target: Any) -> bool:
    return (getattr(target, "options", None) or {}).get("pool", True) is not False


@contextmanager
def connect(target: Any, deadline: float, *, read_only: bool = False) -> Iterator[PgSession]:
    """An autocommit session on `target.url`, given back to the pool (or closed) on exit.

    `read_only` sessions have default_transaction_read_only set at connection start,
    which no RESET undoes, and are pooled apart from the others.
    """
    if target is None or getattr(target, "kind", "") != "postgres":
        raise StepBlocked("this step needs a postgres target")
    left = time_left(deadline)
    key = (target.url, read_only)
    pooled = _pooled(target)
    conn = _pool.take(key) if pooled else None
    if conn is None:
        conn = _connect(target, deadline, left, read_only)
    clean = False
    try:
        yield PgSession(conn, target, deadline)
        clean = True
    finally:
        if clean and pooled:
            _pool.give(key, conn)
        else:
            conn.close()


def _connect(target: Any, deadline: float, left: float, read_only: bool) -> _Connection:
    # libpq takes whole seconds (and treats 1 as 2); the deadline still wins below.
    connect_timeout = max(2, min(MAX_CONNECT_SECONDS, math.ceil(left)))
    try:
        return _Connection.connect(
            target.url,
            autocommit=True,
            connect_timeout=connect_timeout,
            application_name=APPLICATION_NAME,
            # A peer that stops answering mid-query must not hold the thread forever.
            tcp_user_timeout=int(left * 1000) + 1000,
            **({"options": "-c default_transaction_read_only=on"} if read_only else {}),
        )
    except psycopg.OperationalError as exc:
        message = _scrub(exc, target)
        if time.monotonic() >= deadline or "timeout" in message.lower():
            raise StepTimeout(f"PostgreSQL target {target.name}: connect timed out") from exc
        raise StepError(f"cannot connect to PostgreSQL target {target.name}: {message}") from exc
    except psycopg.Error as exc:
        raise StepError(
            f"cannot connect to PostgreSQL target {target.name}: {_scrub(exc, target)}"
        ) from exc


# --- reads --------------------------------------------------------------------------


def slow_queries(s: PgSession, *, min_duration_ms: int, limit: int) -> tuple[int, list[dict]]:
    """(how many, the oldest `limit`) non-idle client backends running longer than the threshold."""
    rows = s.fetchall(
        """
        SELECT pid, usename AS user, datname AS database, application_name, state,
               wait_event_type, wait_event,
               round((extract(epoch FROM clock_timestamp() - query_start) * 1000)::numeric)::bigint
                   AS duration_ms,
               left(query, %(chars)s) AS query,
               count(*) OVER () AS total
        FROM pg_stat_activity
        WHERE backend_type = 'client backend'
          AND state IS DISTINCT FROM 'idle'
          AND pid <> pg_backend_pid()
          AND query_start IS NOT NULL
          AND query_start < clock_timestamp() - make_interval(secs => %(ms)s / 1000.0)
        ORDER BY query_start
        LIMIT %(limit)s
        """,
        {"chars": QUERY_CHARS, "ms": min_duration_ms, "limit": limit},
    )
    total = int(rows[0]["total"]) if rows else 0
    for r in rows:
        r.pop("total", None)
    return total, rows


def statements_top(s: PgSession, *, limit: int) -> dict:
    """pg_stat_statements' slowest statements by mean time, or why there are none."""
    ext = s.fetchone(
        """
        SELECT e.extversion, n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements'
        """
    )
    if ext is None:
        return {"available": False, "reason": "pg_stat_statements is not installed"}
    # The column names changed in PostgreSQL 13.
    mean, total = (
        ("mean_exec_time", "total_exec_time")
        if s.server_version >= 130000
        else ("mean_time", "total_time")
    )
    query = sql.SQL(
        """
        SELECT queryid, calls, round({mean}::numeric, 2) AS mean_ms,
               round({total}::numeric, 2) AS total_ms, rows, left(query, %s) AS query
        FROM {schema}.pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY {mean} DESC NULLS LAST
        LIMIT %s
        """
    ).format(
        mean=sql.Identifier(mean),
        total=sql.Identifier(total),
        schema=sql.Identifier(ext["nspname"]),
    )
    try:
        rows = s.fetchall(query, (QUERY_CHARS, limit))
    except StepTimeout:
        raise
    except StepError as exc:
        # Installed but not preloaded, or not readable for this role: say so, carry on.
        return {"available": False, "reason": str(exc)}
    for r in rows:
        r["queryid"] = str(r["queryid"]) if r["queryid"] is not None else None
        r["mean_ms"] = float(r["mean_ms"]) if r["mean_ms"] is not None else None
        r["total_ms"] = float(r["total_ms"]) if r["total_ms"] is not None else None
    return {"available": True, "version": ext["extversion"], "top": rows}


def target_schemas(s: PgSession) -> list[str]:
    """The schemas a table parameter may name on this target, never a system schema.

    The target's option `schemas` (a list of names) when set; otherwise the user
    schemas on the session's search path (`current_schemas(false)`: the ones
    that exist, without the implicit pg_catalog and pg_temp).
    """
    configured = (getattr(s.target, "options", None) or {}).get("schemas")
    if configured is not None:
        if not isinstance(configured, list):
            raise StepBlocked(f"target {s.target.name}: option schemas must be a list of names")
        names = [check_identifier(n, "schema") for n in configured]
    else:
        row = s.fetchone("SELECT current_schemas(false)::text[] AS schemas")
        names = list(row["schemas"] if row else [])
    return [n for n in names if not is_system_schema(n)]


def resolve_table(s: PgSession, *, schema: str | None, table: str) -> tuple[str, str]:
    """(schema, table) of the table a parameter names, resolved as PostgreSQL resolves it.

    An unqualified name goes through the session's search path, where pg_catalog
    is implicitly first (and pg_temp before it): `pg_authid` there is the catalog's.
    The result must lie in one of the target's own schemas (`target_schemas`);
    StepBlocked otherwise, StepError when no such relation exists.
    """
    table = check_table_name(table)
    if schema is not None:
        schema = check_schema_name(schema)
    allowed = target_schemas(s)
    if schema is not None and schema not in allowed:
        raise StepBlocked(_outside(s, schema, table, allowed))
    name = sql.Identifier(table) if schema is None else sql.Identifier(schema, table)
    row = s.fetchone(
        """
        SELECT n.nspname AS schema, c.relname AS table
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass(%s)
        """,
        (name.as_string(s.conn),),
    )
    if row is None:
        raise StepError(f"table {qualified(schema, table) if schema else table} does not exist")
    if is_system_schema(row["schema"]):
        raise StepBlocked(
            f"refused table {table}: it resolves to {row['schema']}.{row['table']}, "
            "a system catalog, not a table of the target's own"
        )
    if row["schema"] not in allowed:
        raise StepBlocked(_outside(s, row["schema"], row["table"], allowed))
    return row["schema"], row["table"]


def _outside(s: PgSession, schema: str, table: str, allowed: list[str]) -> str:
    own = ", ".join(allowed) or "none"
    return (
        f"refused table {schema}.{table}: schema {schema} is not one of target "
        f"{s.target.name}'s schemas ({own}; set the target's option schemas to widen it)"
    )


def table_stats(s: PgSession, *, schema: str, table: str) -> dict:
    """Catalog and statistics of one table; StepError when it does not exist.

    For a partitioned table the sizes, row estimates and dead rows are summed over
    its leaf partitions (the parent itself holds no rows). Pass what `resolve_table`
    returned: a system schema or catalog name is refused here too.
    """
    check_schema_name(schema)
    check_table_name(table)
    rel = s.fetchone(
        """
        SELECT c.oid::bigint AS oid, c.relkind::text AS relkind, c.reltuples::bigint AS reltuples,
               pg_total_relation_size(c.oid) AS total_bytes,
               (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid) AS partitions
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'm')
        """,
        (schema, table),
    )
    if rel is None:
        raise StepError(f"table {qualified(schema, table)} does not exist")
    own = s.fetchone(
        """
        SELECT n_live_tup, n_dead_tup, seq_scan, idx_scan,
               last_analyze, last_autoanalyze, last_vacuum, last_autovacuum
        FROM pg_stat_all_tables WHERE relid = %s
        """,
        (rel["oid"],),
    ) or dict.fromkeys(
        (
            "n_live_tup",
            "n_dead_tup",
            "seq_scan",
            "idx_scan",
            "last_analyze",
            "last_autoanalyze",
            "last_vacuum",
            "last_autovacuum",
        )
    )
    stats: dict[str, Any] = {
        "schema": schema,
        "table": table,
        "kind": {"r": "table", "p": "partitioned table", "m": "materialized view"}[rel["relkind"]],
        "partitions": int(rel["partitions"]),
        "reltuples": int(rel["reltuples"]) if rel["reltuples"] >= 0 else None,
        "total_bytes": int(rel["total_bytes"]),
        "live_rows": own["n_live_tup"],
        "dead_rows": own["n_dead_tup"],
        "seq_scan": own["seq_scan"],
        "idx_scan": own["idx_scan"],
    }
    for key in ("last_analyze", "last_autoanalyze", "last_vacuum", "last_autovacuum"):
        stats[key] = own[key].isoformat() if own[key] else None
    if rel["relkind"] == "p":
        leaves = s.fetchone(
            """
            SELECT count(*) AS leaves,
                   sum(greatest(c.reltuples, 0))::bigint AS reltuples,
                   bool_or(c.reltuples < 0) AS some_unknown,
                   coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS total_bytes,
                   sum(st.n_live_tup)::bigint AS live_rows,
                   sum(st.n_dead_tup)::bigint AS dead_rows,
                   sum(st.seq_scan)::bigint AS seq_scan,
                   sum(st.idx_scan)::bigint AS idx_scan,
                   count(*) FILTER (WHERE st.last_analyze IS NULL AND st.last_autoanalyze IS NULL)
                       AS leaves_never_analyzed
            FROM pg_partition_tree(%s::regclass) t
            JOIN pg_class c ON c.oid = t.relid
            LEFT JOIN pg_stat_all_tables st ON st.relid = t.relid
            WHERE t.isleaf
            """,
            (rel["oid"],),
        )
        stats.update(
            {
                "leaf_partitions": int(leaves["leaves"]),
                "reltuples": None
                if leaves["some_unknown"] and not leaves["reltuples"]
                else int(leaves["reltuples"] or 0),
                "total_bytes": int(leaves["total_bytes"]),
                "live_rows": leaves["live_rows"],
                "dead_rows": leaves["dead_rows"],
                "seq_scan": leaves["seq_scan"],
                "idx_scan": leaves["idx_scan"],
                "leaves_never_analyzed": int(leaves["leaves_never_analyzed"]),
            }
        )
    return stats


def connection_counts(s: PgSession) -> dict:
    """Client connections by state and by database (the ten largest), with the limits.

    One statement: one round trip to the target, and one snapshot of pg_stat_activity, so
    the counts by state and by database add up to the same total."""
    rows = s.fetchall(
        """
        SELECT l.max_connections, l.reserved, a.state, a.database, a.n
        FROM (SELECT current_setting('max_connections')::int AS max_connections,
                     current_setting('superuser_reserved_connections')::int AS reserved) l
        LEFT JOIN (
            SELECT coalesce(state, 'unknown') AS state, coalesce(datname, '') AS database,
                   count(*) AS n
            FROM pg_stat_activity WHERE backend_type = 'client backend'
            GROUP BY 1, 2
        ) a ON true
        """
    )
    by_state: Counter = Counter()
    by_db: Counter = Counter()
    for r in rows:
        if r["n"] is not None:
            by_state[r["state"]] += int(r["n"])
            by_db[r["database"]] += int(r["n"])

    def ordered(counts: Counter, limit: int | None = None) -> dict[str, int]:
        # The most first, then by name: the order the report shows.
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])

    return {
        "by_state": ordered(by_state),
        "by_database": ordered(by_db, 10),
        "total": sum(by_state.values()),
        "max_connections": rows[0]["max_connections"],
        "superuser_reserved_connections": rows[0]["reserved"],
    }


def analyze(s: PgSession, *, schema: str, table: str) -> None:
    check_schema_name(schema)
    check_table_name(table)
    s.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


# --- cancelling queries --------------------------------------------------------------


def backend(s: PgSession, pid: int) -> dict | None:
    return s.fetchone(
        """
        SELECT pid, backend_type, state, usename AS user, datname AS database,
               left(query, %s) AS query,
               round((extract(epoch FROM clock_timestamp() - query_start) * 1000)::numeric)::bigint
                   AS duration_ms,
               datname IS NOT DISTINCT FROM current_database() AS own_database
        FROM pg_stat_activity WHERE pid = %s
        """,
        (QUERY_CHARS, int(pid)),
    )


def refuse_pid(s: PgSession, pid: int) -> dict:
    """The backend behind `pid` if we may cancel it; StepBlocked / StepError otherwise.

    Only a client backend connected to the target's own database qualifies: the
    cluster's other databases belong to other targets (or to no one we serve).
    """
    if int(pid) == s.backend_pid:
        raise StepBlocked(f"pid {pid} is the executor's own backend; refusing to cancel it")
    row = backend(s, pid)
    if row is None:
        raise StepError(f"no backend with pid {pid} on PostgreSQL target {s.target.name}")
    if row["backend_type"] != "client backend":
        raise StepBlocked(
            f"pid {pid} is a {row['backend_type']}, not a client backend; refusing to cancel it"
        )
    if not row.pop("own_database"):
        raise StepBlocked(
            f"pid {pid} is connected to another database of the cluster, not target "
            f"{s.target.name}'s; refusing to cancel it"
        )
    return row


def old_queries(s: PgSession, *, older_than_seconds: int) -> list[dict]:
    """Active client queries of the target's database, other than ours, older than N seconds."""
    return s.fetchall(
        """
        SELECT pid, usename AS user, datname AS database, state,
               left(query, %(chars)s) AS query,
               round((extract(epoch FROM clock_timestamp() - query_start) * 1000)::numeric)::bigint
                   AS duration_ms
        FROM pg_stat_activity
        WHERE backend_type = 'client backend'
          AND datname = current_database()
          AND state = 'active'
          AND pid <> pg_backend_pid()
          AND query_start < clock_timestamp() - make_interval(secs => %(secs)s)
        ORDER BY query_start
        """,
        {"chars": QUERY_CHARS, "secs": int(older_than_seconds)},
    )


def cancel(s: PgSession, pid: int, *, older_than_seconds: int | None = None) -> bool:
    """pg_cancel_backend(pid), re-checking in the same statement that it is still allowed.

    The conditions are repeated so that a pid reused between the listing and the
    cancel by a background process, our own session or a session of another
    database, is never signalled.
    """
    row = s.fetchone(
        """
        SELECT pg_cancel_backend(pid) AS sent
        FROM pg_stat_activity
        WHERE pid = %(pid)s
          AND backend_type = 'client backend'
          AND datname = current_database()
          AND pid <> pg_backend_pid()
          AND (%(secs)s::int IS NULL OR (
                state = 'active'
                AND query_start < clock_timestamp() - make_interval(secs => %(secs)s::int)))
        """,
        {"pid": int(pid), "secs": older_than_seconds},
    )
    return bool(row and row["sent"])


def qualified(schema: str, table: str) -> str:
    """How a table is named in messages: bare in public, schema-qualified elsewhere."""
    return table if schema == "public" else f"{schema}.{table}"
