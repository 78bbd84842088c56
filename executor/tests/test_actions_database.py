"""database.* specs against the real PostgreSQL on this machine and SQLite files.

Every test makes its own schema / role / database with a unique name and drops it.
Queries that must be found or cancelled run under a role of their own, so the
"older than N seconds" cancel can only ever reach this test's backends.
"""

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from executor.connectors import postgres as pg
from executor.connectors import sqlite as lite
from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepResult, StepTimeout
from executor.targets import ResolvedTarget
from testing.services import free_port
from testing.waiting import wait_until

INJECTION = "users; DROP TABLE users"


def run(name: str, params: dict, target: ResolvedTarget, seconds: float = 10.0) -> StepResult:
    spec = REGISTRY[name]
    assert spec.validate_params(params) == []
    result = spec.run(params, target, time.monotonic() + seconds)
    json.dumps(result.data)  # data must be JSON-serialisable as stored
    return result


def with_user(url: str, user: str, password: str = "") -> str:
    parts = urlsplit(url)
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=auth + host))


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def schema(admin: psycopg.Connection) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def target(pg_url: str, request: pytest.FixtureRequest) -> ResolvedTarget:
    # Table parameters stay within the target's own schemas: the test's schema is one.
    if "schema" in request.fixturenames:
        own = {"schemas": [request.getfixturevalue("schema"), "public"]}
        return ResolvedTarget("db", "postgres", pg_url, options=own)
    return ResolvedTarget("db", "postgres", pg_url)


@pytest.fixture
def role_url(admin: psycopg.Connection, pg_url: str) -> Iterator[str]:
    """A login role of this test's own (trust auth), and the DSN that uses it."""
    role = f"ir_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield with_user(pg_url, role)
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
    )
    wait_until(
        lambda: (
            admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)
            ).fetchone()[0]
            == 0
        ),
        timeout=10,
        what="the test role's sessions to end",
    )
    admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


class Sleeper:
    """A query running in its own connection and thread, until it ends or is cancelled."""

    def __init__(self, url: str, seconds: int = 60) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self.thread.start()

    def _run(self, seconds: int) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(%s) /* ir-sleeper */", (seconds,))
        except Exception as exc:
            self.error = exc

    def running_for_ms(self, admin: psycopg.Connection) -> float:
        row = admin.execute(
            "SELECT state, extract(epoch FROM clock_timestamp() - query_start) * 1000 "
            "FROM pg_stat_activity WHERE pid = %s",
            (self.pid,),
        ).fetchone()
        return float(row[1]) if row and row[0] == "active" else 0.0

    def finish(self, admin: psycopg.Connection) -> None:
        admin.execute("SELECT pg_cancel_backend(%s)", (self.pid,))
        self.thread.join(10)
        self.conn.close()


def make_table(admin: psycopg.Connection, schema: str, name: str, rows: int) -> None:
    admin.execute(
        sql.SQL("CREATE TABLE {}.{} (id int PRIMARY KEY, v text)").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
    )
    admin.execute(
        sql.SQL("INSERT INTO {}.{} SELECT g, md5(g::text) FROM generate_series(1, %s) g").format(
            sql.Identifier(schema), sql.Identifier(name)
        ),
        (rows,),
    )


def stat_row(admin: psycopg.Connection, schema: str, table: str) -> dict:
    cur = admin.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "SELECT n_live_tup, n_dead_tup, last_analyze FROM pg_stat_user_tables "
        "WHERE schemaname = %s AND relname = %s",
        (schema, table),
    ).fetchone()


# --- table_stats --------------------------------------------------------------------


def test_table_stats_reports_what_the_catalog_says(admin, schema, target):
    make_table(admin, schema, "facts", 1000)
    admin.execute(sql.SQL("DELETE FROM {}.facts WHERE id <= 400").format(sql.Identifier(schema)))
    admin.execute("SELECT pg_stat_force_next_flush()")
    wait_until(
        lambda: (stat_row(admin, schema, "facts") or {}).get("n_dead_tup") == 400,
        timeout=10,
        what="the delete to reach the statistics",
    )

    result = run("database.table_stats", {"table": "facts", "schema": schema}, target)

    size = admin.execute(
        "SELECT pg_total_relation_size(%s::regclass)", (f"{schema}.facts",)
    ).fetchone()[0]
    assert result.summary.startswith(f"Table {schema}.facts: ")
    assert result.data["dead_rows"] == 400
    assert result.data["live_rows"] == 600
    assert result.data["total_bytes"] == size
    assert result.data["last_analyzed"] is None
    assert "400 dead rows" in result.summary and "last analyzed never" in result.summary
    # 40% dead and never analyzed: both are warnings.
    assert result.outcome == "warn"
    assert result.data["warnings"] == ["40% of rows are dead", "never analyzed"]


def test_table_stats_counts_partitions_and_sums_their_rows(admin, schema, target):
    s = sql.Identifier(schema)
    admin.execute(
        sql.SQL("CREATE TABLE {}.att (day int, v int) PARTITION BY RANGE (day)").format(s)
    )
    for i in range(3):
        admin.execute(
            sql.SQL("CREATE TABLE {}.{} PARTITION OF {}.att FOR VALUES FROM ({}) TO ({})").format(
                s, sql.Identifier(f"att_{i}"), s, sql.Literal(i * 100), sql.Literal(i * 100 + 100)
            )
        )
    admin.execute(
        sql.SQL("INSERT INTO {}.att SELECT g % 300, g FROM generate_series(1, 3000) g").format(s)
    )
    admin.execute(sql.SQL("ANALYZE {}.att").format(s))

    result = run("database.table_stats", {"table": "att", "schema": schema}, target)

    assert result.data["partitions"] == 3
    assert result.data["kind"] == "partitioned table"
    assert result.data["reltuples"] == 3000  # ANALYZE counts small partitions exactly
    assert result.summary.startswith(f"Table {schema}.att: ~3,000 rows, 3 partitions, ")
    assert result.outcome == "ok", result.summary


def test_table_stats_missing_table_is_an_error(schema, target):
    with pytest.raises(StepError, match="does not exist"):
        run("database.table_stats", {"table": "no_such_table", "schema": schema}, target)


@pytest.mark.parametrize("bad", [INJECTION, 'x"; DROP TABLE x; --', "users\n", "", "1abc"])
def test_table_names_that_are_not_identifiers_are_refused_everywhere(admin, schema, target, bad):
    make_table(admin, schema, "users", 3)
    for name in ("database.table_stats", "database.analyze_table"):
        spec = REGISTRY[name]
        assert spec.validate_params({"table": bad}), f"{name} accepted {bad!r}"
        assert spec.validate_params({"table": "users", "schema": bad})
        # Called directly, past the schema, the connector refuses too.
        with pytest.raises(StepBlocked):
            spec.run({"table": bad, "schema": schema}, target, time.monotonic() + 5)
        with pytest.raises(StepBlocked):
            spec.run({"table": "users", "schema": bad}, target, time.monotonic() + 5)
    with pg.connect(target, time.monotonic() + 5) as s, pytest.raises(StepBlocked):
        pg.analyze(s, schema=schema, table=bad)
    count = admin.execute(
        sql.SQL("SELECT count(*) FROM {}.users").format(sql.Identifier(schema))
    ).fetchone()[0]
    assert count == 3


def test_table_stats_gives_up_at_the_deadline_when_the_table_is_locked(
    admin, schema, target, pg_url
):
    make_table(admin, schema, "locked", 10)
    with psycopg.connect(pg_url) as holder:  # not autocommit: the lock stays held
        holder.execute(
            sql.SQL("LOCK TABLE {}.locked IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(schema))
        )
        started = time.monotonic()
        with pytest.raises(StepTimeout):
            REGISTRY["database.table_stats"].run(
                {"table": "locked", "schema": schema}, target, started + 1.5
            )
        assert time.monotonic() - started < 3.0
        holder.rollback()


def test_unreachable_server_is_an_error_and_the_password_stays_out(pg_url):
    port = free_port()  # nothing listens there
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(netloc=f"postgres:hunter2@127.0.0.1:{port}"))
    target = ResolvedTarget("down", "postgres", url)
    with pytest.raises(StepError) as info:
        run("database.connection_count", {}, target)
    assert not isinstance(info.value, StepTimeout)
    assert "hunter2" not in str(info.value)
    assert url not in str(info.value)


def test_deadline_already_passed_is_a_timeout(target):
    with pytest.raises(StepTimeout):
        REGISTRY["database.connection_count"].run({}, target, time.monotonic() - 1)


def test_password_never_reaches_results_or_plans(pg_url, admin, schema):
    # Trust auth ignores the password, so the connection works and we can look at the output.
    parts = urlsplit(pg_url)
    url = with_user(pg_url, parts.username or "postgres", "hunter2")
    target = ResolvedTarget("db", "postgres", url, options={"schemas": [schema]})
    make_table(admin, schema, "t1", 5)
    outputs = []
    for name, params in [
        ("database.table_stats", {"table": "t1", "schema": schema}),
        ("database.connection_count", {}),
        ("database.slow_queries", {}),
        ("database.analyze_table", {"table": "t1", "schema": schema}),
    ]:
        result = run(name, params, target)
        outputs += [result.summary, result.text, json.dumps(result.data)]
        outputs.append(REGISTRY[name].plan(params, target))
    outputs.append(REGISTRY["database.kill_query"].plan({"older_than_seconds": 3600}, target))
    assert not [o for o in outputs if "hunter2" in o]
    assert any("***" in o for o in outputs)  # the plans name the target by its redacted URL


# --- connection_count ----------------------------------------------------------------


def test_connection_count_matches_pg_stat_activity(role_url, target, admin):
    idle = [psycopg.connect(role_url, autocommit=True) for _ in range(3)]
    try:
        result = run("database.connection_count", {}, target)
        max_conn = int(admin.execute("SHOW max_connections").fetchone()[0])
        assert result.data["max_connections"] == max_conn
        assert result.data["by_state"].get("idle", 0) >= 3
        assert result.data["total"] == sum(result.data["by_state"].values())
        # One snapshot: the counts by database add up to the same total.
        assert result.data["total"] == sum(result.data["by_database"].values())
        assert result.data["superuser_reserved_connections"] == int(
            admin.execute("SHOW superuser_reserved_connections").fetchone()[0]
        )
        assert result.data["percent_used"] == round(100 * result.data["total"] / max_conn, 1)
        assert result.summary.startswith(f"{result.data['total']} of {max_conn} connections")
        assert result.outcome == ("warn" if result.data["percent_used"] > 80 else "ok")
    finally:
        for c in idle:
            c.close()


# --- slow_queries and kill_query -----------------------------------------------------


def test_a_slow_query_is_found_then_cancelled_by_pid(role_url, admin):
    target = ResolvedTarget("db", "postgres", role_url)
    sleeper = Sleeper(role_url)
    try:
        wait_until(lambda: sleeper.running_for_ms(admin) > 300, what="the sleeper to run")

        found = run("database.slow_queries", {"min_duration_ms": 200}, target)
        assert found.outcome == "warn"
        mine = [q for q in found.data["queries"] if q["pid"] == sleeper.pid]
        assert mine and "pg_sleep" in mine[0]["query"] and mine[0]["duration_ms"] >= 200
        assert mine[0]["state"] == "active"
        assert found.data["statements"]["available"] is False  # not installed in this DB
        assert "not installed" in found.data["statements"]["reason"]

        spec = REGISTRY["database.kill_query"]
        plan = spec.plan({"pid": sleeper.pid}, target)
        assert f"pid {sleeper.pid}" in plan and "pg_sleep" in plan
        assert sleeper.thread.is_alive()  # the dry-run touched nothing

        result = run("database.kill_query", {"pid": sleeper.pid}, target)
        assert result.outcome == "ok"
        assert result.data["cancelled"] == [sleeper.pid]
        sleeper.thread.join(10)
        assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
    finally:
        sleeper.finish(admin)


def test_slow_queries_ignores_queries_under_the_threshold(role_url, admin):
    target = ResolvedTarget("db", "postgres", role_url)
    sleeper = Sleeper(role_url)
    try:
        wait_until(lambda: sleeper.running_for_ms(admin) > 0, what="the sleeper to run")
        result = run("database.slow_queries", {"min_duration_ms": 3_600_000}, target)
        assert result.outcome == "ok"
        assert result.data["count"] == 0
        assert result.summary == "No client query running longer than 3600000 ms"
    finally:
        sleeper.finish(admin)


def test_kill_query_older_than_cancels_old_queries_only(role_url, admin):
    target = ResolvedTarget("db", "postgres", role_url)
    old = Sleeper(role_url)
    try:
        wait_until(lambda: old.running_for_ms(admin) > 2500, what="the old query to age")
        young = Sleeper(role_url)
        try:
            # The young one started just now: far from the 2 s threshold when the kill runs.
            wait_until(lambda: young.running_for_ms(admin) > 0, what="the young query to run")
            plan = REGISTRY["database.kill_query"].plan({"older_than_seconds": 2}, target)
            assert f"pid {old.pid}" in plan
            assert f"pid {young.pid}" not in plan

            result = run("database.kill_query", {"older_than_seconds": 2}, target)
            assert old.pid in result.data["cancelled"]
            assert young.pid not in result.data["cancelled"]
            old.thread.join(10)
            assert isinstance(old.error, psycopg.errors.QueryCanceled)
            assert young.thread.is_alive()
        finally:
            young.finish(admin)
    finally:
        old.finish(admin)


def test_kill_query_refuses_its_own_and_non_client_backends(target, admin):
    with pg.connect(target, time.monotonic() + 5) as s, pytest.raises(StepBlocked, match="own"):
        pg.refuse_pid(s, s.backend_pid)
    aux = admin.execute(
        "SELECT pid, backend_type FROM pg_stat_activity WHERE backend_type <> 'client backend' "
        "ORDER BY pid LIMIT 1"
    ).fetchone()
    assert aux, "PostgreSQL always runs a checkpointer"
    spec = REGISTRY["database.kill_query"]
    with pytest.raises(StepBlocked, match="not a client backend"):
        spec.run({"pid": aux[0]}, target, time.monotonic() + 5)
    assert "not a client backend" in spec.plan({"pid": aux[0]}, target)
    still = admin.execute("SELECT backend_type FROM pg_stat_activity WHERE pid = %s", (aux[0],))
    assert still.fetchone()[0] == aux[1]


def test_kill_query_params_need_exactly_one_selector():
    spec = REGISTRY["database.kill_query"]
    assert spec.validate_params({}) != []
    assert spec.validate_params({"pid": 5, "older_than_seconds": 3}) != []
    assert spec.validate_params({"pid": "5; SELECT 1"}) != []
    assert spec.validate_params({"older_than_seconds": 60}) == []


def test_pg_stat_statements_installed_but_not_preloaded_is_said_so(admin, pg_url):
    db = f"ir_pgss_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        url = urlunsplit(urlsplit(pg_url)._replace(path=f"/{db}"))
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE EXTENSION pg_stat_statements")
            preloaded = (
                "pg_stat_statements" in c.execute("SHOW shared_preload_libraries").fetchone()[0]
            )
        result = run("database.slow_queries", {}, ResolvedTarget("db", "postgres", url))
        statements = result.data["statements"]
        if preloaded:
            assert statements["available"] is True
            assert isinstance(statements["top"], list)
        else:
            assert statements["available"] is False
            assert "shared_preload_libraries" in statements["reason"]
    finally:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


# --- analyze_table -------------------------------------------------------------------


def test_analyze_table_moves_last_analyze(admin, schema, target):
    make_table(admin, schema, "fresh", 500)
    spec = REGISTRY["database.analyze_table"]
    plan = spec.plan({"table": "fresh", "schema": schema}, target)
    assert f"ANALYZE {schema}.fresh" in plan and "last analyzed never" in plan
    assert stat_row(admin, schema, "fresh")["last_analyze"] is None  # the plan did not run it

    result = run("database.analyze_table", {"table": "fresh", "schema": schema}, target)

    assert result.outcome == "ok"
    assert result.data["before"]["last_analyze"] is None
    assert result.data["after"]["last_analyze"] is not None
    assert result.data["after"]["reltuples"] == 500
    assert stat_row(admin, schema, "fresh")["last_analyze"] is not None
    assert "→ ~500" in result.summary


def test_analyze_missing_table_is_an_error_in_run_and_said_in_plan(schema, target):
    params = {"table": "nope", "schema": schema}
    with pytest.raises(StepError, match="does not exist"):
        run("database.analyze_table", params, target)
    assert "does not exist" in REGISTRY["database.analyze_table"].plan(params, target)


def test_plans_without_a_target_are_readable():
    for name, params in [
        ("database.analyze_table", {"table": "x"}),
        ("database.kill_query", {"pid": 42}),
        ("database.kill_query", {"older_than_seconds": 60}),
        ("database.slow_queries", {}),
        ("database.table_stats", {"table": "x"}),
        ("database.connection_count", {}),
    ]:
        text = REGISTRY[name].plan(params, None)
        assert isinstance(text, str) and len(text) > 10


# --- SQLite --------------------------------------------------------------------------


@pytest.fixture
def sqlite_target(tmp_path) -> ResolvedTarget:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total INT)")
        conn.execute("CREATE INDEX orders_customer ON orders (customer)")
        conn.executemany(
            "INSERT INTO orders (customer, total) VALUES (?, ?)",
            [(f"c{i % 17}", i) for i in range(250)],
        )
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    conn.close()
    # The form the built-in app-db target writes: sqlite:/// + an absolute path.
    return ResolvedTarget("lite", "sqlite", f"sqlite:///{path}")


def _sqlite_has_dbstat() -> bool:
    """Whether this Python's SQLite was built with the dbstat table (most builds are)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT count(*) FROM dbstat").fetchone()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_sqlite_table_stats_then_analyze(sqlite_target):
    stats = run("database.table_stats", {"table": "orders"}, sqlite_target)
    assert stats.outcome == "ok"
    assert stats.data["rows"] == 250
    assert [i["name"] for i in stats.data["indexes"]] == ["orders_customer"]
    assert stats.data["analyzed"] is False
    if _sqlite_has_dbstat():
        assert stats.data["table_bytes"] > 0 and stats.data["size_source"] == "dbstat"
    else:
        assert stats.data["table_bytes"] is None
        assert "dbstat unavailable" in stats.data["size_source"]
    assert stats.summary.startswith("Table orders: 250 rows, 1 index, ")
    assert "not analyzed" in stats.summary

    plan = REGISTRY["database.analyze_table"].plan({"table": "orders"}, sqlite_target)
    assert "0 sqlite_stat1 rows" in plan

    result = run("database.analyze_table", {"table": "orders"}, sqlite_target)
    assert result.data["before"] == []
    assert {r["index"] for r in result.data["after"]} == {"orders_customer"}
    assert result.data["after"][0]["stat"].startswith("250 ")

    again = run("database.table_stats", {"table": "orders"}, sqlite_target)
    assert again.data["analyzed"] is True


def test_sqlite_refuses_bad_names_and_reports_missing_tables(sqlite_target):
    for name in ("database.table_stats", "database.analyze_table"):
        with pytest.raises(StepBlocked):
            REGISTRY[name].run({"table": INJECTION}, sqlite_target, time.monotonic() + 5)
        with pytest.raises(StepError, match="does not exist"):
            run(name, {"table": "missing"}, sqlite_target)
    with lite.connect(sqlite_target, time.monotonic() + 5) as conn:
        with pytest.raises(StepBlocked):
            lite.table_stats(conn, 'orders" ; DROP TABLE users; --')
        with pytest.raises(StepBlocked):
            lite.quoted('a"b')
    assert run("database.table_stats", {"table": "users"}, sqlite_target).data["rows"] == 0


def test_sqlite_url_with_three_slashes_names_the_same_file(sqlite_target):
    path = sqlite_target.url[len("sqlite:///") :]
    assert path.startswith("/")
    short = ResolvedTarget("lite", "sqlite", "sqlite://" + path)  # sqlite:///abs/path
    assert run("database.table_stats", {"table": "orders"}, short).data["rows"] == 250


def test_sqlite_checks_never_create_a_database(tmp_path):
    path = tmp_path / "absent.db"
    target = ResolvedTarget("lite", "sqlite", f"sqlite:///{path}")
    with pytest.raises(StepError):
        run("database.table_stats", {"table": "orders"}, target)
    with pytest.raises(StepError):
        run("database.analyze_table", {"table": "orders"}, target)
    assert not path.exists()


def test_sqlite_locked_database_times_out_at_the_deadline(sqlite_target):
    path = sqlite_target.url[len("sqlite:///") :]
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(StepTimeout):
            REGISTRY["database.table_stats"].run({"table": "orders"}, sqlite_target, started + 0.5)
        assert time.monotonic() - started < 2.0
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_vacuum_is_destructive_and_gives_back_the_pages_of_deleted_rows(sqlite_target):
    spec = REGISTRY["database.vacuum"]
    assert spec.safety == "destructive" and spec.target_kinds == ("sqlite",)
    with sqlite3.connect(lite.db_path(sqlite_target)) as conn:
        conn.executemany(
            "INSERT INTO orders (customer, total) VALUES (?, ?)",
            [("x" * 500, i) for i in range(2000)],
        )
        conn.execute("DELETE FROM orders WHERE length(customer) = 500")
    conn.close()
    plan = spec.plan({}, sqlite_target)
    assert "Would rewrite the whole database of target lite" in plan
    free = re.search(r"of which ([\d,]+) are free", plan)
    assert free and int(free.group(1).replace(",", "")) > 0

    result = run("database.vacuum", {}, sqlite_target)
    before, after = result.data["before"], result.data["after"]
    assert before["free_pages"] > 0 and after["free_pages"] == 0
    assert after["bytes"] < before["bytes"]
    with lite.connect(sqlite_target, time.monotonic() + 5) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 250  # data kept


def test_sqlite_vacuum_refuses_other_targets_and_stops_at_the_deadline(sqlite_target):
    spec = REGISTRY["database.vacuum"]
    with pytest.raises(StepBlocked):
        spec.run({}, ResolvedTarget("pg", "postgres", "postgresql://x@127.0.0.1/x"), 5.0)
    assert spec.validate_params({"table": "orders"})  # no parameters but the target
    with pytest.raises(StepTimeout):
        spec.run({}, sqlite_target, time.monotonic() - 1)
