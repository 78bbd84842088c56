"""The engine: boundary checks before anything runs, parallel checks with deadlines."""

import threading
import time

import pytest

from executor.choices import CheckOutcome, StepKind
from executor.engine import prepare_step, run_checks
from testing.services import free_port

# Targets come from the environment, settings and the catalog tables.
pytestmark = pytest.mark.django_db


def _respond_after(delay: float, release: threading.Event | None = None):
    def handle(req) -> None:
        if release is not None:
            release.wait(delay)
        else:
            time.sleep(delay)  # the server under test is slow on purpose
        body = b'{"status":"ok"}'
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handle


@pytest.fixture
def http_targets(settings):
    def configure(**targets: str) -> None:
        settings.EXECUTOR_TARGETS = {
            name: {"kind": "http", "url": url, "secret_env": ""} for name, url in targets.items()
        }

    return configure


def _check(step_id: str, action: str, **params) -> dict:
    return {"id": step_id, "action": action, "params": params}


def test_eight_slow_checks_run_in_parallel(http_server, http_targets, settings):
    settings.EXECUTOR_MAX_PARALLEL_CHECKS = 8
    http_targets(slow=http_server(_respond_after(0.5)) + "/healthz")
    steps = [
        prepare_step(
            step=_check(f"c{i}", "http.health_check", target="slow"),
            position=i,
            kind=StepKind.CHECK,
        )
        for i in range(8)
    ]
    started = time.monotonic()
    outcomes = run_checks(steps, timeout=5)
    elapsed = time.monotonic() - started
    assert [o.outcome for o in outcomes] == [CheckOutcome.OK] * 8
    assert all(o.duration_ms >= 490 for o in outcomes)
    # Serially this would take 4 s, two at a time 2 s; the room is for a loaded machine.
    assert elapsed < 1.9, f"8 × 500 ms checks took {elapsed:.2f}s"


def test_a_hung_target_times_out_and_the_others_complete(http_server, http_targets):
    release = threading.Event()
    http_targets(
        hung=http_server(_respond_after(30, release)) + "/healthz",
        fine=http_server(_respond_after(0)) + "/healthz",
    )
    steps = [
        prepare_step(
            step=_check("hung", "http.health_check", target="hung"), position=0, kind=StepKind.CHECK
        ),
        prepare_step(
            step=_check("fine", "http.health_check", target="fine"), position=1, kind=StepKind.CHECK
        ),
    ]
    started = time.monotonic()
    try:
        outcomes = run_checks(steps, timeout=0.5)
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert outcomes[0].outcome == CheckOutcome.TIMEOUT
    assert outcomes[1].outcome == CheckOutcome.OK


def test_unreachable_target_is_an_error_not_a_crash(http_targets):
    http_targets(gone=f"http://127.0.0.1:{free_port()}/healthz")
    step = prepare_step(
        step=_check("gone", "http.health_check", target="gone"), position=0, kind=StepKind.CHECK
    )
    [outcome] = run_checks([step], timeout=2)
    assert outcome.outcome == CheckOutcome.ERROR
    assert outcome.summary


@pytest.mark.parametrize(
    ("step", "kind", "reason"),
    [
        (_check("x", "shell.exec", command="rm -rf /"), StepKind.CHECK, "not an allowed action"),
        (_check("x", "database.kill_query", pid=1), StepKind.CHECK, "is not a check step"),
        (
            _check("x", "database.table_stats", table="users; DROP TABLE users"),
            StepKind.CHECK,
            "refused parameters",
        ),
        (
            _check("x", "database.table_stats", table="t", extra="x"),
            StepKind.CHECK,
            "refused parameters",
        ),
        (
            _check("x", "database.table_stats", table="t", target="nowhere"),
            StepKind.CHECK,
            "no target named 'nowhere'",
        ),
        (_check("x", "metrics.query", query="up"), StepKind.CHECK, "no target configured"),
    ],
)
def test_steps_are_blocked_before_anything_runs(step, kind, reason, settings):
    settings.EXECUTOR_TARGETS = {}
    prepared = prepare_step(step=step, position=0, kind=kind)
    assert reason in prepared.blocked
    [outcome] = run_checks([prepared])
    assert outcome.outcome == CheckOutcome.BLOCKED
    assert reason in outcome.summary


def test_allow_list_narrows_the_registry(settings):
    settings.EXECUTOR_ALLOWED_ACTIONS = ["http.health_check"]
    prepared = prepare_step(
        step=_check("t", "database.table_stats", table="t"), position=0, kind=StepKind.CHECK
    )
    assert "not an allowed action" in prepared.blocked


def test_wrong_target_kind_is_blocked(http_targets):
    http_targets(web="http://127.0.0.1:1/")
    prepared = prepare_step(
        step=_check("t", "database.table_stats", table="t", target="web"),
        position=0,
        kind=StepKind.CHECK,
    )
    assert "is a http target" in prepared.blocked


def test_checks_queued_behind_a_full_pool_get_their_own_time(http_server, http_targets, settings):
    # Two at a time, ten checks of 0.3 s each: five waves (1.5 s in all, past one shared
    # 0.9 s deadline), each well within its own 0.9 s (room for a loaded machine).
    settings.EXECUTOR_MAX_PARALLEL_CHECKS = 2
    http_targets(slowish=http_server(_respond_after(0.3)) + "/healthz")
    steps = [
        prepare_step(
            step=_check(f"c{i}", "http.health_check", target="slowish"),
            position=i,
            kind=StepKind.CHECK,
        )
        for i in range(10)
    ]
    outcomes = run_checks(steps, timeout=0.9)
    assert [o.outcome for o in outcomes] == [CheckOutcome.OK] * 10


def test_no_credential_leaves_a_step_whatever_the_connector_says(settings, monkeypatch):
    from executor.registry import REGISTRY

    url = "postgresql://app:pa%24s-w0rd@db.internal:5432/orders"
    settings.EXECUTOR_TARGETS = {"orders": {"kind": "postgres", "url": url}}

    def leaky(params, target, deadline):
        raise RuntimeError(f"could not connect to {target.url} (password pa$s-w0rd)")

    monkeypatch.setattr(REGISTRY["database.connection_count"].impl, "run", leaky)
    step = prepare_step(
        step=_check("c", "database.connection_count", target="orders"),
        position=0,
        kind=StepKind.CHECK,
    )
    [outcome] = run_checks([step], timeout=2)
    assert outcome.outcome == CheckOutcome.ERROR
    assert "pa$s-w0rd" not in outcome.summary and "pa%24s-w0rd" not in outcome.summary
    assert "db.internal" in outcome.summary  # still says where


def _held_checks(http_server, http_targets, release: threading.Event, n: int) -> list:
    http_targets(held=http_server(_respond_after(10, release)) + "/healthz")
    return [
        prepare_step(
            step=_check(f"h{i}", "http.health_check", target="held"),
            position=i,
            kind=StepKind.CHECK,
        )
        for i in range(n)
    ]


def test_started_checks_run_while_the_caller_works(http_server, http_targets):
    """start_checks returns while they run (the executor plans the actions meanwhile);
    outcomes() waits for them."""
    from executor.engine import start_checks

    release = threading.Event()
    pending = start_checks(_held_checks(http_server, http_targets, release, 2), timeout=5)
    assert not any(f.done() for _, f in pending.futures)  # held by the server, not run yet
    release.set()
    assert [o.outcome for o in pending.outcomes()] == [CheckOutcome.OK] * 2


def test_checks_get_threads_of_their_own_while_the_shared_ones_are_stuck(
    http_server, http_targets, settings, monkeypatch
):
    """A connector stuck past its deadline keeps its shared thread; once too few are
    free, later runs get a pool of their own and still finish."""
    from executor import engine
    from executor.registry import REGISTRY

    release = threading.Event()

    def stuck_forever(params, target, deadline):  # ignores its deadline
        release.wait(30)
        raise RuntimeError("released")

    monkeypatch.setattr(REGISTRY["database.connection_count"].impl, "run", stuck_forever)
    quick_url = http_server(_respond_after(0)) + "/healthz"
    settings.EXECUTOR_TARGETS = {
        "orders": {"kind": "postgres", "url": "postgresql://app@db.internal:5432/orders"},
        "quick": {"kind": "http", "url": quick_url, "secret_env": ""},
    }

    def steps(action: str, target: str) -> list:
        return [
            prepare_step(
                step=_check(f"s{i}", action, target=target), position=i, kind=StepKind.CHECK
            )
            for i in range(8)
        ]

    stuck = engine.start_checks(steps("database.connection_count", "orders"), timeout=0.2)
    try:
        assert [o.outcome for o in stuck.outcomes()] == [CheckOutcome.TIMEOUT] * 8
        assert stuck.own_pool is None  # they took shared threads, and still hold them
        quick = steps("http.health_check", "quick")
        first = engine.start_checks(quick, timeout=5)  # the last eight shared threads
        second = engine.start_checks(quick, timeout=5)  # none left: a pool of its own
        assert first.own_pool is None and second.own_pool is not None
        assert [o.outcome for o in second.outcomes()] == [CheckOutcome.OK] * 8
        assert [o.outcome for o in first.outcomes()] == [CheckOutcome.OK] * 8
    finally:
        release.set()
    for _, future in stuck.futures:
        future.result(timeout=10)  # released: their threads are the shared pool's again
    assert engine._take_shared(engine._SHARED_WIDTH)
    engine._shared_busy = 0
