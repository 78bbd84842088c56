"""Handing committed outbox rows to the worker, cheaply and without losing any.

One broker message is enough for many rows: the worker that takes it claims every
pending row it can (`outbox_process` drains in batches). So a busy webhook does not pay
a broker round trip per delivery: within INGEST_DISPATCH_COALESCE_MS of a send, a
process sends nothing now but makes sure one more message leaves once the interval is
over (a trailing send). That message leaves after the row's commit, so the worker that
takes it sees the row. After a failed send the dispatcher pauses: a down broker costs
seconds per connection attempt and the webhook must keep answering fast; the sweeper
processes what waits meanwhile.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .queue import PROCESS_OUTBOX, enqueue

logger = logging.getLogger(__name__)


class Sent(StrEnum):
    NOW = "now"  # a message left in this call
    LATER = "later"  # a trailing message will leave within the coalescing interval
    PAUSED = "paused"  # the broker failed moments ago: the sweeper will pick the row up
    FAILED = "failed"  # the broker refused this send


@dataclass
class Outcome:
    sent: Sent
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.sent in (Sent.NOW, Sent.LATER)


class Dispatcher:
    """Coalesces sends per process. `send(outbox_id)` publishes one message or raises.

    Trailing sends leave from one long-lived thread per process (a thread per send would
    rebuild Celery's thread-local result backend and broker connection each time).
    """

    def __init__(self, send: Callable[[int], None]) -> None:
        self._send = send
        self._init()
        os.register_at_fork(after_in_child=self._init)  # the sender thread does not fork
        atexit.register(self.flush)  # a process that exits now still sends before it goes

    def _init(self) -> None:
        self._cond = threading.Condition()
        self._last_send = float("-inf")
        self._due: float | None = None  # when the trailing send leaves (monotonic)
        self._due_id = 0
        self._sending = False
        self._thread: threading.Thread | None = None
        self._pause_seconds = 30.0
        self.paused_until = 0.0

    def dispatch(self, outbox_id: int, *, coalesce_ms: float, pause_seconds: float) -> Outcome:
        with self._cond:
            self._pause_seconds = pause_seconds
            now = time.monotonic()
            if now < self.paused_until:
                return Outcome(Sent.PAUSED)
            if self._due is not None:
                return Outcome(Sent.LATER)  # the trailing send leaves after this commit
            due = self._last_send + coalesce_ms / 1000
            if due > now:
                self._due, self._due_id = due, outbox_id
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="ingest-dispatch", daemon=True
                    )
                    self._thread.start()
                self._cond.notify_all()
                return Outcome(Sent.LATER)
            self._last_send = now
        try:
            self._send(outbox_id)
        except Exception as exc:
            self._pause(exc, outbox_id)
            return Outcome(Sent.FAILED, f"{type(exc).__name__}: {exc}")
        return Outcome(Sent.NOW)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._due is None:
                    self._cond.wait()
                wait = self._due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                outbox_id, self._due, self._sending = self._due_id, None, True
                self._last_send = time.monotonic()
            try:
                self._send(outbox_id)
            except Exception as exc:  # no request to answer here: the sweeper has the rows
                self._pause(exc, outbox_id)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _pause(self, exc: BaseException, outbox_id: int) -> None:
        logger.warning("ingest outbox %s not dispatched: %s", outbox_id, type(exc).__name__)
        with self._cond:
            self.paused_until = time.monotonic() + self._pause_seconds

    def reset(self) -> None:
        """Forget the pause and any pending trailing send (tests start each from scratch)."""
        with self._cond:
            self._due = None
            self._last_send = float("-inf")
            self.paused_until = 0.0

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until no trailing send is pending or leaving; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._due is not None or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


def _send_to_worker(outbox_id: int) -> None:
    enqueue(PROCESS_OUTBOX, args=[outbox_id])


DISPATCHER = Dispatcher(_send_to_worker)
