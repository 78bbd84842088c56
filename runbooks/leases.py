"""The generating worker's lease on a runbook version: renewed while it works.

A worker that dies (SIGKILL, a lost machine) stops renewing; once the lease has run out
the lease sweep (`services.runbook_sweep_leases`) frees its slot. The claim's attempt
number is the fencing token: a worker that was taken over can neither renew nor finish.
"""

import logging
import os
import threading
import time
from datetime import timedelta
from types import TracebackType

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from .choices import RunbookStatus
from .models import Runbook

logger = logging.getLogger(__name__)


def lease_renew(*, runbook_id: int, attempt: int, seconds: float) -> bool:
    """Extend the lease of the holder of claim `attempt`; False once it holds it no more."""
    expires = timezone.now() + timedelta(seconds=seconds)
    return bool(
        Runbook.objects.filter(
            pk=runbook_id, status=RunbookStatus.GENERATING, attempts=attempt
        ).update(lease_expires_at=expires)
    )


def lease_hold(*, runbook_id: int, attempt: int) -> bool:
    """Whether claim `attempt` still holds the version, locking its row until the caller's
    transaction ends, so the sweep cannot take it over between this check and the move."""
    return bool(
        Runbook.objects.filter(
            pk=runbook_id, status=RunbookStatus.GENERATING, attempts=attempt
        ).update(lease_expires_at=None)
    )


class LeaseHeartbeat:
    """Renews the lease every third of its length, until the block ends.

    `lost` is set when the renewal finds the version taken over (the work will be thrown
    away at the end). The renewals come from one thread per process (`_Beats`), started
    the first time a lease is held: a generation starts no thread of its own, and waits
    for none at its end. Inside a caller's transaction (eager tasks) nobody else can see
    the claim, let alone sweep it, and a second connection would wait on its row lock:
    no renewals.
    """

    def __init__(self, *, runbook_id: int, attempt: int, seconds: float) -> None:
        self.runbook_id, self.attempt, self.seconds = runbook_id, attempt, seconds
        self.lost = threading.Event()

    def __enter__(self) -> "LeaseHeartbeat":
        if not connection.in_atomic_block and self.seconds > 0:
            _BEATS.add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A lease never added is not there to remove: nothing to wait for.
        _BEATS.remove(self, timeout=max(self.seconds, 5.0))

    def renew(self) -> bool:
        """One renewal, on the heartbeat thread; False once the claim is lost."""
        try:
            if lease_renew(runbook_id=self.runbook_id, attempt=self.attempt, seconds=self.seconds):
                return True
        except DatabaseError as exc:  # try again at the next beat, within the lease
            logger.warning("lease of runbook %s not renewed: %s", self.runbook_id, exc)
            return True
        self.lost.set()
        return False


class _Beats:
    """The heartbeat thread of this process: renews each held lease when it is due."""

    def __init__(self) -> None:
        self._reset()
        # A forked child (a prefork pool process) holds none of its parent's leases.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.cond = threading.Condition()
        self.due: dict[LeaseHeartbeat, float] = {}  # when each renewal is due (monotonic)
        self.renewing: LeaseHeartbeat | None = None
        self.connected = False  # the thread has renewed since it last let its connection go
        self.thread: threading.Thread | None = None

    def add(self, beat: LeaseHeartbeat) -> None:
        with self.cond:
            self.due[beat] = time.monotonic() + beat.seconds / 3
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="lease-heartbeat", daemon=True
                )
                self.thread.start()
            self.cond.notify_all()

    def remove(self, beat: LeaseHeartbeat, *, timeout: float) -> None:
        """No renewal of `beat` starts after this, nor is one under way when it returns."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.due.pop(beat, None)
            if not self.due and self.connected:
                self.cond.notify_all()  # the last one gone: the thread lets its connection go
            while self.renewing is beat and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)

    def _run(self) -> None:
        while True:
            with self.cond:
                beat = min(self.due, key=self.due.__getitem__, default=None)
                if beat is not None:
                    wait = self.due[beat] - time.monotonic()
                    if wait > 0:
                        self.cond.wait(wait)
                        continue
                    self.due[beat] = time.monotonic() + beat.seconds / 3
                    self.renewing = beat
            if beat is None:
                connection.close()  # no lease to renew: hold no connection meanwhile
                with self.cond:
                    self.connected = False
                    while not self.due:
                        self.cond.wait()
                continue
            kept = True
            try:
                close_old_connections()  # a connection the database dropped is replaced
                kept = beat.renew()
            except Exception:  # the thread renews every lease of the process: it must go on
                logger.exception("lease of runbook %s: renewal failed", beat.runbook_id)
            finally:
                with self.cond:
                    self.renewing, self.connected = None, True
                    if not kept:
                        self.due.pop(beat, None)
                    self.cond.notify_all()


_BEATS = _Beats()
