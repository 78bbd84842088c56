"""Rewrite a SQLite database file (VACUUM): the embedded default's destructive action.

VACUUM gives back the free pages of deleted rows and lays tables and indexes out
again in order. It is destructive in the registry's sense, like cancelling
queries or restarting machines: it cannot be undone, and while it runs every
writer of the service waits for the lock (and fails with "database is locked"
once its own timeout passes). So it always waits for an approver.
"""

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from executor.choices import Safety, StepKind
from executor.connectors import sqlite as lite
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult

from .database_common import PLAN_SECONDS, need


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"


def _state(conn: sqlite3.Connection) -> dict:
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return {
        "page_size": page_size,
        "pages": pages,
        "free_pages": free,
        "bytes": page_size * pages,
        "free_bytes": page_size * free,
    }


def _disk_free(target: Any) -> int:
    return shutil.disk_usage(Path(lite.db_path(target)).parent).free


@register(
    name="database.vacuum",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Rewrite the whole SQLite database file (VACUUM) to give back free pages and "
    "defragment tables and indexes. Writers wait until it ends; cannot be undone.",
    params={"type": "object", "properties": {}},
    targets=("sqlite",),
)
class Vacuum:
    def plan(self, params: dict, target: Any) -> str:
        if target is None or target.kind != "sqlite":
            return "Would rewrite the SQLite database file with VACUUM (no target resolved)."
        try:
            with lite.connect(target, time.monotonic() + PLAN_SECONDS) as conn:
                now = _state(conn)
            disk = _disk_free(target)
        except (StepBlocked, StepError, OSError) as exc:
            return f"Would rewrite the database of target {target.name} with VACUUM; cannot read it now: {exc}"
        return (
            f"Would rewrite the whole database of target {target.name} ({target.display_url}) "
            f"with VACUUM: {_mb(now['bytes'])} in {now['pages']:,} pages, of which "
            f"{now['free_pages']:,} are free ({_mb(now['free_bytes'])} to give back). "
            "Every writer waits until it ends (or fails with 'database is locked'); it "
            f"needs about {_mb(now['bytes'])} of free disk, {_mb(disk)} free now. "
            "It cannot be undone; stopped at the deadline, the file stays as it was."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        need(target, ("sqlite",))
        with lite.connect(target, deadline, write=True) as conn:
            before = _state(conn)
            disk = _disk_free(target)
            # VACUUM writes a full copy of the database before it replaces the original.
            if disk < before["bytes"]:
                raise StepBlocked(
                    f"not enough free disk for VACUUM: {_mb(disk)} free, the database is "
                    f"{_mb(before['bytes'])}"
                )
            conn.execute("VACUUM")
            after = _state(conn)
        given_back = before["bytes"] - after["bytes"]
        summary = (
            f"Rewrote the database of target {target.name}: {_mb(before['bytes'])} → "
            f"{_mb(after['bytes'])} ({_mb(max(given_back, 0))} given back, "
            f"{before['free_pages']:,} free pages before, {after['free_pages']:,} after)"
        )
        return StepResult(
            outcome="ok",
            summary=summary,
            data={"before": before, "after": after},
            text=summary,
        )
