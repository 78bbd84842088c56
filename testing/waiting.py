"""Synchronisation on state: poll a condition until it holds, never a fixed sleep."""

import time
from collections.abc import Callable

from testing.services import port_open


def wait_until(predicate: Callable[[], object], *, timeout: float = 30.0, what: str = "") -> object:
    """Poll a condition until it holds and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def wait_for_port(host: str, port: int, *, timeout: float = 30.0, what: str = "") -> None:
    """Wait until something accepts TCP connections on host:port."""
    wait_until(lambda: port_open(host, port), timeout=timeout, what=what or f"{host}:{port}")


def worker_idle(app, queues: tuple[str, ...] = ("default", "executor")) -> bool:
    """No task running, reserved or waiting in the broker's queues (Redis): the work a
    test set off has finished, so tearing its database down races nothing."""
    import redis

    inspect = app.control.inspect(timeout=1.0, limit=1)  # the one worker of the session
    for busy in (inspect.active(), inspect.reserved()):
        if busy and any(busy.values()):
            return False
    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        return not any(client.llen(queue) for queue in queues)
    finally:
        client.close()
