"""PostgreSQL target sessions are pooled per DSN: reused while fresh, closed when idle too
long, never reused after an error, read-only ones kept apart, all closed at shutdown."""

import time
from collections.abc import Iterator

import pytest

from executor.connectors import postgres as pg
from executor.results import StepError
from executor.targets import ResolvedTarget


@pytest.fixture
def target(pg_url: str) -> Iterator[ResolvedTarget]:
    pg.close_pooled()
    yield ResolvedTarget("pooled-db", "postgres", pg_url)
    pg.close_pooled()


def deadline() -> float:
    return time.monotonic() + 10


def backend(target: ResolvedTarget, **kwargs) -> int:
    with pg.connect(target, deadline(), **kwargs) as s:
        return s.fetchone("SELECT pg_backend_pid() AS pid")["pid"]


def test_a_session_that_ended_cleanly_is_reused(target):
    assert backend(target) == backend(target)


def test_a_session_idle_past_its_expiry_is_closed_not_reused(target, monkeypatch):
    with pg.connect(target, deadline()) as s:
        first, conn = s.backend_pid, s.conn
    monkeypatch.setattr(pg, "POOL_IDLE_SECONDS", -1.0)  # every idle session has expired
    assert backend(target) != first
    assert conn.closed


def test_a_session_that_raised_is_not_pooled(target):
    with pytest.raises(StepError), pg.connect(target, deadline()) as s:
        first = s.backend_pid
        s.fetchall("SELECT * FROM no_such_table_here")
    assert backend(target) != first


def test_read_only_sessions_stay_read_only_and_apart(target):
    with pg.connect(target, deadline(), read_only=True) as s:
        ro_pid = s.backend_pid
        assert (
            s.fetchone("SHOW default_transaction_read_only")["default_transaction_read_only"]
            == "on"
        )
    with pg.connect(target, deadline(), read_only=True) as s:
        assert s.backend_pid == ro_pid  # reused as read-only
        s.execute("RESET ALL")  # what a caller could try: the startup option survives it
        with pytest.raises(StepError, match="read-only"):
            s.execute("CREATE TEMP TABLE pool_probe (x int)")
    # That session raised, so it is gone; a read-write one never comes from the read-only pool.
    with pg.connect(target, deadline()) as s:
        assert s.backend_pid != ro_pid
        assert (
            s.fetchone("SHOW default_transaction_read_only")["default_transaction_read_only"]
            == "off"
        )


def test_statement_timeout_follows_each_sessions_deadline(target):
    with pg.connect(target, time.monotonic() + 30) as s:
        pid = s.backend_pid
    with pg.connect(target, time.monotonic() + 2) as s:
        assert s.backend_pid == pid
        ms = int(s.fetchone("SHOW statement_timeout")["statement_timeout"].removesuffix("ms") or 0)
        assert 0 < ms <= 2000


def _shown(s: pg.PgSession) -> int:
    """The statement_timeout in force on the session, in ms (read past `_bound`)."""
    return int(s.conn.execute("SHOW statement_timeout").fetchone()[0].removesuffix("ms") or 0)


def _timeouts_sent(s: pg.PgSession) -> list[str]:
    """From now on, every statement_timeout the session sends."""
    sent: list[str] = []
    real = s.conn.execute

    def execute(query, params=None, **kwargs):
        if "statement_timeout" in str(query) and "SHOW" not in str(query):
            sent.append(params[0])
        return real(query, params, **kwargs)

    s.conn.execute = execute
    return sent


def test_a_timeout_that_fits_the_next_step_is_kept_not_sent_again(target):
    with pg.connect(target, time.monotonic() + 10) as s:
        pid = s.backend_pid
        s.fetchone("SELECT 1 AS one")
        kept = _shown(s)
        assert 10_000 * (1 - pg.TIMEOUT_SLACK) <= kept <= 10_000
    with pg.connect(target, time.monotonic() + 10) as s:  # the next step, as long
        assert s.backend_pid == pid
        sent = _timeouts_sent(s)
        s.fetchone("SELECT 1 AS one")
        s.fetchone("SELECT 2 AS two")
        assert sent == []  # no round trip to set it again
        assert _shown(s) == kept


def test_a_timeout_is_never_longer_than_the_time_left_nor_much_shorter(target):
    with pg.connect(target, time.monotonic() + 10) as s:
        s.fetchone("SELECT 1 AS one")
        sent = _timeouts_sent(s)
        s.deadline = time.monotonic() + 5  # less time left than the timeout in force
        s.fetchone("SELECT 1 AS one")
        assert len(sent) == 1 and 0 < _shown(s) <= 5_000
        s.deadline = time.monotonic() + 60  # far more: not cut short by more than the slack
        s.fetchone("SELECT 1 AS one")
        assert len(sent) == 2 and _shown(s) >= 60_000 * (1 - pg.TIMEOUT_SLACK) - 1_000


def test_a_command_that_resets_the_session_does_not_leave_it_without_a_timeout(target):
    with pg.connect(target, time.monotonic() + 10) as s:
        s.fetchone("SELECT 1 AS one")
        s.execute("RESET ALL")  # statement_timeout back to the server's default, none
        s.fetchone("SELECT 1 AS one")
        assert 0 < _shown(s) <= 10_000


def test_a_target_can_opt_out(pg_url):
    target = ResolvedTarget("unpooled", "postgres", pg_url, options={"pool": False})
    assert backend(target) != backend(target)


def test_shutdown_closes_every_pooled_session(target):
    with pg.connect(target, deadline()) as a, pg.connect(target, deadline(), read_only=True) as b:
        conns = [a.conn, b.conn]
    assert pg.close_pooled() == 2
    assert all(c.closed for c in conns)
    assert pg.close_pooled() == 0
