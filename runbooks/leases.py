"""The generating worker's lease on a runbook version: renewed while it works.

A worker that dies (SIGKILL, a lost machine) stops renewing; once the lease has run out
the lease sweep (`services.runbook_sweep_leases`) frees its slot. The claim's attempt
number is the fencing token: a worker that was taken over can neither renew nor finish.
"""

import logging
import threading
from datetime import timedelta
from types import TracebackType

from django.db import DatabaseError, connection
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
    """Renews the lease every third of its length from a small thread, until the block ends.

    `lost` is set when the renewal finds the version taken over (the work will be thrown
    away at the end). Inside a caller's transaction (eager tasks) nobody else can see the
    claim, let alone sweep it, and a second connection would wait on its row lock: no thread.
    """

    def __init__(self, *, runbook_id: int, attempt: int, seconds: float) -> None:
        self.runbook_id, self.attempt, self.seconds = runbook_id, attempt, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LeaseHeartbeat":
        if not connection.in_atomic_block and self.seconds > 0:
            self._thread = threading.Thread(
                target=self._beat, name=f"lease-runbook-{self.runbook_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(self.seconds, 5.0))

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 3):
                try:
                    if not lease_renew(
                        runbook_id=self.runbook_id, attempt=self.attempt, seconds=self.seconds
                    ):
                        self.lost.set()
                        return
                except DatabaseError as exc:  # try again at the next beat, within the lease
                    logger.warning("lease of runbook %s not renewed: %s", self.runbook_id, exc)
        finally:
            connection.close()  # this thread's own connection
