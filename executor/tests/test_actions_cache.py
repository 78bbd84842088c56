"""cache.invalidate against the real Redis on this machine (DB 11, a unique key prefix)."""

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from executor.connectors import redis as rconn
from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepTimeout
from executor.targets import ResolvedTarget
from testing.services import free_port

DB = 11
SPEC = REGISTRY["cache.invalidate"]


@pytest.fixture
def url(redis_url: str) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{DB}"))


@pytest.fixture
def client(url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(url)
    yield r
    r.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    p = f"irtest{uuid.uuid4().hex[:10]}"
    yield p
    for batch in _batches(client.scan_iter(match=f"{p}:*", count=1000)):
        client.unlink(*batch)


def _batches(keys, size=500):
    batch = []
    for k in keys:
        batch.append(k)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(client: redis.Redis, prefix: str, family: str, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{prefix}:{family}:{i}", "x")
    pipe.execute()


def count(client: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


def test_invalidate_unlinks_matching_keys_and_leaves_the_rest(client, prefix, url):
    fill(client, prefix, "session", 1200)
    fill(client, prefix, "user", 100)
    target = ResolvedTarget("cache", "redis", url)
    params = {"pattern": f"{prefix}:session:*"}
    assert SPEC.validate_params(params) == []

    result = SPEC.run(params, target, time.monotonic() + 10)

    assert result.outcome == "ok"
    assert result.data["unlinked"] == 1200
    assert result.data["limited"] is False and result.data["complete"] is True
    assert result.data["batches"] >= 1
    assert count(client, f"{prefix}:session:*") == 0
    assert count(client, f"{prefix}:user:*") == 100
    assert result.summary == f"Unlinked 1,200 keys matching '{prefix}:session:*'"


def test_invalidate_stops_at_max_keys_and_says_so(client, prefix, url):
    fill(client, prefix, "session", 1200)
    target = ResolvedTarget("cache", "redis", url)

    result = SPEC.run(
        {"pattern": f"{prefix}:session:*", "max_keys": 500}, target, time.monotonic() + 10
    )

    assert result.outcome == "warn"
    assert result.data["unlinked"] == 500 and result.data["limited"] is True
    assert "stopped at max_keys (500)" in result.summary
    assert count(client, f"{prefix}:session:*") == 700


def test_plan_counts_with_scan_and_deletes_nothing(client, prefix, url):
    fill(client, prefix, "session", 1200)
    target = ResolvedTarget("cache", "redis", url)

    plan = SPEC.plan({"pattern": f"{prefix}:session:*"}, target)
    assert "1,200 keys match now" in plan
    assert f"{prefix}:session:" in plan  # a sample of real keys

    capped = SPEC.plan({"pattern": f"{prefix}:session:*", "max_keys": 100}, target)
    assert "at least 100 keys match" in capped

    none = SPEC.plan({"pattern": f"{prefix}:nothing:*"}, target)
    assert "0 keys match now" in none
    assert count(client, f"{prefix}:session:*") == 1200

    assert "(no target resolved)" in SPEC.plan({"pattern": f"{prefix}:x:*"}, None)


@pytest.mark.parametrize(
    "pattern", ["*", "**", "?", "*:session", "[a-z]*", "a b*", "session:*\n", "", "a\\*"]
)
def test_patterns_without_a_literal_prefix_are_refused(pattern, client, prefix, url):
    fill(client, prefix, "keep", 3)
    assert SPEC.validate_params({"pattern": pattern}) != []
    with pytest.raises(StepBlocked):
        rconn.check_pattern(pattern)
    with pytest.raises(StepBlocked):
        SPEC.run({"pattern": pattern}, ResolvedTarget("cache", "redis", url), time.monotonic() + 5)
    assert count(client, f"{prefix}:keep:*") == 3


def test_unreachable_redis_is_an_error_without_the_password():
    target = ResolvedTarget("cache", "redis", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    with pytest.raises(StepError) as info:
        SPEC.run({"pattern": "x:*"}, target, time.monotonic() + 5)
    assert not isinstance(info.value, StepTimeout)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in SPEC.plan({"pattern": "x:*"}, target)


def test_a_server_that_never_answers_times_out_at_the_deadline():
    # Accepts connections and reads, never replies: only the socket timeout can end it.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    conns = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conns.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(StepTimeout):
            SPEC.run(
                {"pattern": "x:*"},
                ResolvedTarget("cache", "redis", f"redis://127.0.0.1:{port}/0"),
                started + 1.0,
            )
        assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        thread.join(2)
        for c in conns:
            c.close()
        server.close()


def test_deadline_already_passed_is_a_timeout(url):
    with pytest.raises(StepTimeout):
        SPEC.run({"pattern": "x:*"}, ResolvedTarget("cache", "redis", url), time.monotonic() - 1)
