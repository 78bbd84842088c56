"""SQLite connector: the stdlib sqlite3 on the file named by `sqlite:///abs/path`.

Checks open the file read-only (`file:...?mode=ro`); ANALYZE opens it read-write
but never creates it. A table name must be a plain identifier AND a table that
sqlite_master lists before it is double-quoted into a statement. A progress
handler aborts any statement still running at the step's deadline.
"""

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from executor.actions.params import check_identifier, check_table_name
from executor.results import StepBlocked, StepError, StepTimeout, time_left

PROGRESS_EVERY = 1000  # VM instructions between deadline checks


def db_path(target: Any) -> str:
    url = getattr(target, "url", "") or ""
    if not url.startswith("sqlite:///"):
        raise StepBlocked(f"target {target.name} is not a sqlite:///absolute/path URL")
    # sqlite:///abs/path and sqlite:////abs/path (what the built-in target writes) both
    # name the absolute path /abs/path.
    path = "/" + url[len("sqlite://") :].lstrip("/")
    if not PurePosixPath(path).is_absolute() or "?" in path or "#" in path or "\0" in path:
        raise StepBlocked(f"target {target.name} must name an absolute file path")
    return path


@contextmanager
def connect(target: Any, deadline: float, *, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection bounded by `deadline`; read-only unless `write`."""
    if target is None or getattr(target, "kind", "") != "sqlite":
        raise StepBlocked("this step needs a sqlite target")
    left = time_left(deadline)
    mode = "rw" if write else "ro"
    uri = f"file:{quote(db_path(target))}?mode={mode}"
    try:
        # `timeout` bounds the wait for another writer's lock.
        conn = sqlite3.connect(uri, uri=True, timeout=left, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StepError(f"cannot open SQLite target {target.name}: {exc}") from exc
    conn.set_progress_handler(lambda: int(time.monotonic() >= deadline), PROGRESS_EVERY)
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc) or time.monotonic() >= deadline:
            raise StepTimeout(
                f"SQLite target {target.name}: statement stopped at the deadline"
            ) from exc
        raise StepError(f"SQLite target {target.name}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StepError(f"SQLite target {target.name}: {exc}") from exc
    finally:
        conn.close()


def existing_table(conn: sqlite3.Connection, table: str) -> str:
    """The table's name as sqlite_master spells it; StepError when there is none.

    SQLite's own tables (sqlite_master, sqlite_stat1, sqlite_sequence, ...: any
    name starting with sqlite_, in any case) are refused, never looked up.
    """
    check_table_name(table)
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        (table,),
    ).fetchone()
    if row is None:
        raise StepError(f"table {table} does not exist")
    return check_table_name(row[0])


def quoted(name: str) -> str:
    """Double-quoted identifier; only for names that passed `existing_table`."""
    check_identifier(name, "table")
    return f'"{name}"'


def _stat1(conn: sqlite3.Connection, table: str) -> list[dict]:
    has_stat1 = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    if not has_stat1:
        return []
    return [
        {"index": idx, "stat": stat}
        for idx, stat in conn.execute(
            "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = ? ORDER BY idx", (table,)
        )
    ]


def table_stats(conn: sqlite3.Connection, table: str) -> dict:
    name = existing_table(conn, table)
    rows = conn.execute(f"SELECT count(*) FROM {quoted(name)}").fetchone()[0]  # noqa: S608
    indexes = [
        {"name": n, "unique": bool(u), "origin": o, "partial": bool(p)}
        for n, u, o, p in conn.execute(
            'SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name',
            (name,),
        )
    ]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    db_pages = conn.execute("PRAGMA page_count").fetchone()[0]
    stats: dict[str, Any] = {
        "table": name,
        "rows": rows,
        "indexes": indexes,
        "page_size": page_size,
        "database_bytes": page_size * db_pages,
    }
    try:
        # dbstat is compiled in most builds; it gives this table's own pages and bytes.
        pages, size = conn.execute(
            "SELECT count(*), coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", (name,)
        ).fetchone()
        stats["table_pages"], stats["table_bytes"] = pages, size
        stats["size_source"] = "dbstat"
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise
        stats["table_pages"] = stats["table_bytes"] = None
        stats["size_source"] = "page_count * page_size (whole database; dbstat unavailable)"
    stat1 = _stat1(conn, name)
    stats["analyzed"] = bool(stat1)
    stats["sqlite_stat1"] = stat1
    return stats


def analyze(conn: sqlite3.Connection, table: str) -> None:
    name = existing_table(conn, table)
    # Schema-qualified, so a table that happens to be called "main" is not read as the schema.
    conn.execute(f"ANALYZE main.{quoted(name)}")
    conn.commit()


def stat1(conn: sqlite3.Connection, table: str) -> list[dict]:
    return _stat1(conn, existing_table(conn, table))
