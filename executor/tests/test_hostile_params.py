"""Hostile runbook parameters: system catalogs, cluster-wide kills, match-everything
queries and targets of other services are refused, in the plan as in the run."""

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from executor.choices import StepKind
from executor.connectors import loki as lconn
from executor.connectors import postgres as pg
from executor.connectors import promql
from executor.connectors import sqlite as lite
from executor.engine import prepare_step
from executor.models import Service
from executor.models import Target as TargetRow
from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError
from executor.targets import ResolvedTarget, target_scope
from testing.services import free_port
from testing.waiting import wait_until

STATS = REGISTRY["database.table_stats"]
ANALYZE = REGISTRY["database.analyze_table"]
KILL = REGISTRY["database.kill_query"]
METRICS = REGISTRY["metrics.query"]
LOGS = REGISTRY["logs.search"]


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def with_options(url: str, search_path: str) -> str:
    """`url` whose sessions start with this search_path."""
    parts = urlsplit(url)
    option = quote(f"-c search_path={search_path}", safe="")
    query = f"{parts.query}&options={option}" if parts.query else f"options={option}"
    return urlunsplit(parts._replace(query=query))


# --- 1. system catalogs ---------------------------------------------------------------

# (schema, table) pairs naming a system catalog, in the ways a runbook could spell them.
CATALOG_PARAMS = [
    {"schema": "pg_catalog", "table": "pg_authid"},
    {"schema": "PG_CATALOG", "table": "pg_authid"},
    {"schema": "Pg_Catalog", "table": "pg_class"},
    {"schema": "information_schema", "table": "sql_features"},
    {"schema": "INFORMATION_SCHEMA", "table": "sql_parts"},
    {"schema": "pg_toast", "table": "anything"},
    {"schema": "pg_temp", "table": "anything"},
    {"schema": "pg_temp_3", "table": "anything"},
    {"schema": "pg_toast_temp_1", "table": "anything"},
    {"table": "pg_authid"},  # unqualified: pg_catalog is implicitly first on the search path
    {"table": "pg_statistic"},
    {"table": "PG_SHADOW"},
    {"schema": "public", "table": "pg_class"},
]
NOT_IDENTIFIERS = [
    {"table": "pg_catalog.pg_authid"},
    {"table": '"pg_catalog"."pg_authid"'},
    {"table": "pg_authid", "schema": '"pg_catalog"'},
]


@pytest.mark.parametrize("params", CATALOG_PARAMS + NOT_IDENTIFIERS)
def test_catalog_tables_are_refused_by_the_schema_and_in_plan_and_run(params):
    unreachable = ResolvedTarget("db", "postgres", f"postgresql://u@127.0.0.1:{free_port()}/x")
    for spec in (STATS, ANALYZE):
        assert spec.validate_params(params), f"{spec.name} accepted {params}"
        # Past the schema, refused before any connection (a connection would be a StepError).
        with pytest.raises(StepBlocked):
            spec.run(params, unreachable, soon())
        assert spec.plan(params, unreachable).startswith("Would refuse")
        assert spec.plan(params, None).startswith("Would refuse")


@pytest.mark.django_db
@pytest.mark.parametrize("params", CATALOG_PARAMS[:4] + CATALOG_PARAMS[9:11])
def test_analyze_on_a_catalog_is_blocked_not_proposed(params, settings):
    settings.EXECUTOR_TARGETS = {"db": {"kind": "postgres", "url": "postgresql://h/x"}}
    step = {"id": "analyze", "action": "database.analyze_table", "params": params, "safe": True}
    prepared = prepare_step(step=step, position=0, kind=StepKind.ACTION, scope=target_scope(""))
    assert prepared.blocked.startswith("refused parameters"), prepared.blocked


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def schema(admin: psycopg.Connection) -> Iterator[str]:
    name = f"h_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    admin.execute(sql.SQL("CREATE TABLE {}.orders (id int)").format(sql.Identifier(name)))
    yield name
    admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def last_analyze(admin: psycopg.Connection, schema: str, table: str) -> object:
    return admin.execute(
        "SELECT last_analyze FROM pg_stat_all_tables WHERE schemaname = %s AND relname = %s",
        (schema, table),
    ).fetchone()[0]


def test_catalog_names_are_refused_by_the_connector_itself(pg_url):
    target = ResolvedTarget("db", "postgres", pg_url)
    with pg.connect(target, soon()) as s:
        for params in CATALOG_PARAMS:
            with pytest.raises(StepBlocked):
                pg.resolve_table(s, schema=params.get("schema"), table=params["table"])
        for schema, table in [("pg_catalog", "pg_authid"), ("information_schema", "tables")]:
            with pytest.raises(StepBlocked):
                pg.table_stats(s, schema=schema, table=table)
            with pytest.raises(StepBlocked):
                pg.analyze(s, schema=schema, table=table)


def test_an_unqualified_name_resolving_to_a_system_schema_is_refused(pg_url):
    # information_schema first on the search path: sql_features resolves into it.
    target = ResolvedTarget("db", "postgres", with_options(pg_url, "information_schema,public"))
    with pytest.raises(StepBlocked, match="information_schema.sql_features"):
        STATS.run({"table": "sql_features"}, target, soon())
    plan = ANALYZE.plan({"table": "sql_features"}, target)
    assert plan.startswith("Would refuse") and "system catalog" in plan
    # Listed as the target's own, a system schema still is not.
    listed = ResolvedTarget(
        "db", "postgres", pg_url, options={"schemas": ["information_schema", "pg_catalog"]}
    )
    with pg.connect(listed, soon()) as s:
        assert pg.target_schemas(s) == []
    with pytest.raises(StepBlocked):
        STATS.run({"table": "sql_features", "schema": "public"}, listed, soon())


def test_tables_outside_the_targets_schemas_are_refused(pg_url, admin, schema):
    default = ResolvedTarget("db", "postgres", pg_url)  # own schemas: the search path's (public)
    for params in ({"table": "orders", "schema": schema},):
        with pytest.raises(StepBlocked, match="not one of target db's schemas"):
            STATS.run(params, default, soon())
        with pytest.raises(StepBlocked):
            ANALYZE.run(params, default, soon())
        assert ANALYZE.plan(params, default).startswith("Would refuse")
    # Unqualified, through a search path that reaches the schema, it is still not the target's.
    on_path = ResolvedTarget(
        "db", "postgres", with_options(pg_url, f"{schema},public"), options={"schemas": ["public"]}
    )
    with pytest.raises(StepBlocked, match=f"{schema}.orders"):
        ANALYZE.run({"table": "orders"}, on_path, soon())
    assert last_analyze(admin, schema, "orders") is None
    # The target's own schemas, by option or by its search path, are fine.
    listed = ResolvedTarget("db", "postgres", pg_url, options={"schemas": [schema]})
    assert STATS.run({"table": "orders", "schema": schema}, listed, soon()).data["schema"] == schema
    by_path = ResolvedTarget("db", "postgres", with_options(pg_url, f"{schema},public"))
    result = ANALYZE.run({"table": "orders"}, by_path, soon())
    assert result.data["schema"] == schema
    assert last_analyze(admin, schema, "orders") is not None


def test_a_quoted_or_differently_cased_schema_does_not_reach_another_table(pg_url, admin, schema):
    target = ResolvedTarget("db", "postgres", pg_url, options={"schemas": [schema]})
    with pytest.raises(StepBlocked):
        STATS.run({"table": "orders", "schema": schema.upper()}, target, soon())
    with pytest.raises(StepError, match="does not exist"):
        STATS.run({"table": "ORDERS", "schema": schema}, target, soon())


@pytest.fixture
def sqlite_target(tmp_path) -> ResolvedTarget:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
        conn.execute("CREATE INDEX orders_v ON orders (v)")
        conn.execute("INSERT INTO orders (v) VALUES ('a')")
        conn.execute("ANALYZE")  # creates sqlite_stat1; AUTOINCREMENT made sqlite_sequence
    conn.close()
    return ResolvedTarget("lite", "sqlite", f"sqlite:///{path}")


@pytest.mark.parametrize(
    "table", ["sqlite_master", "sqlite_stat1", "SQLITE_STAT1", "Sqlite_Sequence", "sqlite_schema"]
)
def test_sqlite_internal_tables_are_refused(sqlite_target, table):
    for spec in (STATS, ANALYZE):
        assert spec.validate_params({"table": table})
        with pytest.raises(StepBlocked):
            spec.run({"table": table}, sqlite_target, soon())
        assert spec.plan({"table": table}, sqlite_target).startswith("Would refuse")
    with lite.connect(sqlite_target, soon()) as conn:
        with pytest.raises(StepBlocked):
            lite.existing_table(conn, table)
        with pytest.raises(StepBlocked):
            lite.table_stats(conn, table)
    assert STATS.run({"table": "orders"}, sqlite_target, soon()).data["rows"] == 1


# --- 2. cancelling queries of other databases -----------------------------------------


class Sleeper:
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(60) /* ir-other-db */")
        except Exception as exc:
            self.error = exc

    def finish(self, admin: psycopg.Connection) -> None:
        admin.execute("SELECT pg_cancel_backend(%s)", (self.pid,))
        self.thread.join(10)
        self.conn.close()


def running_ms(admin: psycopg.Connection, pid: int) -> float:
    row = admin.execute(
        "SELECT state, extract(epoch FROM clock_timestamp() - query_start) * 1000 "
        "FROM pg_stat_activity WHERE pid = %s",
        (pid,),
    ).fetchone()
    return float(row[1]) if row and row[0] == "active" else 0.0


@pytest.fixture
def other_db_sleeper(admin: psycopg.Connection, pg_url: str) -> Iterator[Sleeper]:
    """An old query in another database of the same cluster."""
    db = f"ir_other_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    sleeper = Sleeper(urlunsplit(urlsplit(pg_url)._replace(path=f"/{db}")))
    try:
        wait_until(lambda: running_ms(admin, sleeper.pid) > 1500, what="the query to age")
        yield sleeper
    finally:
        sleeper.finish(admin)
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


def test_kill_older_than_never_touches_another_database(pg_url, admin, other_db_sleeper):
    target = ResolvedTarget("db", "postgres", pg_url)
    pid = other_db_sleeper.pid
    assert f"pid {pid}" not in KILL.plan({"older_than_seconds": 1}, target)
    result = KILL.run({"older_than_seconds": 1}, target, soon(10))
    assert pid not in result.data["cancelled"]
    assert pid not in [r["pid"] for r in result.data["candidates"]]
    with pg.connect(target, soon()) as s:
        assert pid not in [r["pid"] for r in pg.old_queries(s, older_than_seconds=1)]
        # The cancel statement re-checks the database itself.
        assert pg.cancel(s, pid) is False
        assert pg.cancel(s, pid, older_than_seconds=1) is False
    assert other_db_sleeper.thread.is_alive()
    assert running_ms(admin, pid) > 0


def test_kill_by_pid_of_another_database_is_refused(pg_url, admin, other_db_sleeper):
    target = ResolvedTarget("db", "postgres", pg_url)
    pid = other_db_sleeper.pid
    with pytest.raises(StepBlocked, match="another database"):
        KILL.run({"pid": pid}, target, soon())
    plan = KILL.plan({"pid": pid}, target)
    assert plan.startswith("Would refuse") and "another database" in plan
    with pg.connect(target, soon()) as s, pytest.raises(StepBlocked, match="another database"):
        pg.refuse_pid(s, pid)
    assert other_db_sleeper.thread.is_alive() and running_ms(admin, pid) > 0


def test_kill_never_cancels_its_own_session(pg_url):
    target = ResolvedTarget("db", "postgres", pg_url)
    with pg.connect(target, soon()) as s:
        own = s.backend_pid
        assert pg.cancel(s, own) is False
        assert own not in [r["pid"] for r in pg.old_queries(s, older_than_seconds=1)]
        with pytest.raises(StepBlocked, match="own backend"):
            pg.refuse_pid(s, own)


# --- 3. match-everything queries --------------------------------------------------------

MATCH_EVERYTHING = [
    '{__name__=~".+"}',
    '{__name__=~".*"}',
    '{__name__!=""}',
    'count({__name__=~".+"})',
    'sum by (job) ({job=~".*"})',
    'count_over_time({__name__=~".+"}[1d])',
    'up / on(instance) group_left(version) {__name__=~"build_.*"}',
    'rate({a="}{", __name__=~".+"}[5m])',  # braces inside a string are not the selector's end
    '{job="x\\"y", instance=~".+"}',  # an escaped quote inside a value
    'sum without (instance) ({service=~".+"}) offset 1h',
    '{service="checkout"}',  # a service label, but the incident is not in the catalog
    'max_over_time({__name__=~"http_.*"}[1h:1m])',
    'BY(x) (  {x="1"}  )',
]


@pytest.mark.parametrize("query", MATCH_EVERYTHING)
def test_selectors_without_a_metric_are_refused(query):
    assert METRICS.validate_params({"query": query}) == []  # the shape is valid PromQL
    closed = ResolvedTarget("prom", "prometheus", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StepBlocked, match="names no metric"):
        promql.check_query(query, closed)
    # Refused before any request: a connection attempt would be a StepError instead.
    with pytest.raises(StepBlocked, match="names no metric"):
        METRICS.run({"query": query, "lookback_minutes": 1440}, closed, soon())
    assert METRICS.plan({"query": query}, closed).startswith("Would refuse")
    assert METRICS.plan({"query": query}, None).startswith("Would refuse")


SCOPED = [
    '{service="checkout"}',
    'rate({service="checkout", status=~"5.."}[5m])',
    'sum by (route) (rate({status=~"5..",service="checkout"}[5m]))',
    'up{job="x"} and on(instance) {service="checkout"}',
]


@pytest.mark.parametrize("query", SCOPED)
def test_selectors_scoped_to_the_incidents_service_pass(query):
    mine = ResolvedTarget("prom", "prometheus", "http://p:9090", service="checkout")
    assert promql.check_query(query, mine) == query
    assert not METRICS.plan({"query": query}, mine).startswith("Would refuse")
    for other in ("", "billing", "Checkout"):
        elsewhere = ResolvedTarget("prom", "prometheus", "http://p:9090", service=other)
        with pytest.raises(StepBlocked, match="names no metric"):
            promql.check_query(query, elsewhere)


def test_scope_needs_an_exact_equality_on_a_service_label():
    mine = ResolvedTarget("prom", "prometheus", "http://p:9090", service="checkout")
    for query in (
        '{service=~"checkout"}',
        '{service=~"checkout|billing"}',
        '{service!="billing"}',
        '{job="checkout"}',
        '{service="checkout2"}',
        '{service="check\\x6fut"}',
    ):
        with pytest.raises(StepBlocked, match="names no metric"):
            promql.check_query(query, mine)
    # The label that names a service comes from the target's options.
    app = ResolvedTarget(
        "prom", "prometheus", "http://p:9090", service="checkout", options={"service_label": "app"}
    )
    assert promql.check_query('{app="checkout"}', app)
    with pytest.raises(StepBlocked):
        promql.check_query('{service="checkout"}', app)


def test_selectors_are_found_through_strings_functions_and_clauses():
    found = promql.vector_selectors(
        'label_replace(sum by (le, "x") (rate(a_total{p="{b}"}[5m] offset 1h)), "d", "$1", '
        '"s", "(.*)") / ignoring(q) group_right {"c.d", e="f"} @ end()'
    )
    assert [(s.metric, s.text) for s in found] == [
        ("a_total", 'a_total{p="{b}"}'),
        ("c.d", '{"c.d", e="f"}'),
    ]
    assert [s.metric for s in promql.vector_selectors("job:http:rate5m + SUM BY (x) (y)")] == [
        "job:http:rate5m",
        "y",
    ]


@pytest.mark.django_db
def test_the_incidents_catalog_service_reaches_the_metrics_check(settings):
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {}
    prom = TargetRow.objects.create(name="checkout-prom", kind="prometheus", base="http://p:9090")
    Service.objects.create(name="checkout").targets.add(prom)
    step = {"id": "q", "action": "metrics.query", "params": {"query": '{service="checkout"}'}}
    prepared = prepare_step(step=step, position=0, kind=StepKind.CHECK, service="checkout")
    assert prepared.target.service == "checkout"
    assert not METRICS.plan(prepared.params, prepared.target).startswith("Would refuse")


@pytest.mark.parametrize("service", [".*", ".+", "", "a|b", 'x"} or {job=~".*', "*"])
def test_loki_stream_selectors_cannot_match_everything(service):
    assert LOGS.validate_params({"service": service, "pattern": "error"})
    with pytest.raises(StepBlocked):
        lconn.build_query(service=service, pattern="error")


def test_loki_selector_is_one_equality_on_a_literal_service():
    query = lconn.build_query(service="check.out", pattern='"} |~ ".*')
    assert query.startswith('{service="check.out"} |= ')
    assert "=~" not in query.split("|=")[0]


# --- 4. incidents outside the catalog ---------------------------------------------------


@pytest.fixture
def owned_and_shared(settings) -> None:
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {"shared-db": {"kind": "postgres", "url": "postgresql://h/s"}}
    owned = TargetRow.objects.create(name="checkout-db", kind="postgres", base="postgresql://h/c")
    only = TargetRow.objects.create(name="checkout-cache", kind="redis", base="redis://h:6379/0")
    Service.objects.create(name="checkout").targets.add(owned, only)


UNSCOPED = ["", "unknown", "Checkout", "CHECKOUT", " checkout", "checkout ", "checkout\n"]


@pytest.mark.django_db
@pytest.mark.parametrize("service", UNSCOPED)
def test_an_incident_outside_the_catalog_uses_only_shared_targets(owned_and_shared, service):
    scope = target_scope(service)
    assert scope.own is None and scope.service == ""
    with pytest.raises(StepBlocked, match="belongs to another service"):
        scope.resolve(name="checkout-db", kinds=("postgres",))
    assert scope.resolve(name=None, kinds=("postgres",)).name == "shared-db"
    with pytest.raises(StepBlocked, match="no target configured"):
        scope.resolve(name=None, kinds=("redis",))  # the only redis target is checkout's
    assert {t.name for t in scope.usable()} == {"shared-db", "timeline"}
    # The executor's own resolution of a step, by name and by kind.
    for params in ({"target": "checkout-db"}, {}):
        step = {"id": "c", "action": "database.connection_count", "params": params}
        prepared = prepare_step(step=step, position=0, kind=StepKind.CHECK, service=service)
        if params:
            assert "belongs to another service" in prepared.blocked
        else:
            assert prepared.target.name == "shared-db"


@pytest.mark.django_db
def test_the_catalog_service_itself_keeps_its_targets(owned_and_shared):
    scope = target_scope("checkout")
    assert scope.resolve(name="checkout-db", kinds=("postgres",)).name == "checkout-db"
    assert scope.resolve(name=None, kinds=("postgres",)).name == "checkout-db"
    assert scope.resolve(name=None, kinds=("redis",)).service == "checkout"
