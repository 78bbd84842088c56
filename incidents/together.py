"""Rows of several tables written by one PostgreSQL statement.

A data-modifying CTE inserts each model's new rows from one array per column and makes
one conditional status move, atomic on its own: one round trip and no BEGIN or COMMIT,
where the ORM would spend one statement per table inside a transaction, and none of
the ORM's per-row work. Identifiers and types come from the models' metadata; every
value is a bound parameter, never SQL text.

PostgreSQL only: callers keep their ORM path for other databases.
"""

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from django.db import connection, models, transaction

from .prepared import server_cursor
from .transitions import Move


def insert_fields(model: type[models.Model], *, with_pk: bool = False) -> list[models.Field]:
    """The columns an INSERT of `model` names: all, but the pk unless the rows carry it."""
    return [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]


def unnest_arrays(fields: Sequence[models.Field]) -> str:
    """`unnest(%s::type[], …)`, one array parameter per column.

    The type's length is left out (varchar[], not varchar(64)[]): a cast to varchar(64)
    would cut a longer value short without a word, where the column refuses it."""
    arrays = ", ".join(f"%s::{f.db_type(connection).split('(')[0]}[]" for f in fields)
    return f"unnest({arrays})"


def column_values(fields: Sequence[models.Field], rows: Sequence[models.Model]) -> list[list]:
    """One list per column, as the database takes it.

    auto_now columns are stamped; auto_now_add ones too, unless the row carries its time
    already (evidence is dated when it was gathered, not when its row went in)."""
    return [[_value(f, row) for row in rows] for f in fields]


def _value(field: models.Field, row: models.Model) -> Any:
    if getattr(field, "auto_now_add", False) and getattr(row, field.attname) is not None:
        value = getattr(row, field.attname)
    else:
        value = field.pre_save(row, True)
    return field.get_db_prep_save(value, connection)


def reserve_ids(rows: Sequence[models.Model]) -> None:
    """Give unsaved rows of one model their ids from its sequence, before they are
    written: what is recorded with them (a timeline event naming them) can say them."""
    if not rows:
        return
    meta = rows[0]._meta
    with server_cursor(connection) as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk


def write_together(
    inserts: Sequence[Sequence[models.Model]],
    move: Move | None = None,
    *,
    only_if_moved: bool = False,
) -> bool:
    """Insert each list of new rows (one model per list) and make the move, in one statement.

    Rows that carry their ids (`reserve_ids`) are written with them; the others get theirs.
    Returns True if the move was made (its row was still in a source state and matched
    `move.where`), else False; with `only_if_moved`, no row is written unless it was.
    All or nothing: an error (an IntegrityError, say) leaves no row written. Inside a
    transaction it runs under a savepoint, so the caller may recover from that error.
    """
    if only_if_moved and move is None:
        raise ValueError("only_if_moved needs a move")
    lists = [list(rows) for rows in inserts if rows]
    shapes = []
    for rows in lists:
        with_pk = rows[0].pk is not None
        if any((row.pk is not None) != with_pk for row in rows):
            raise ValueError("rows of one list either all carry their ids or none does")
        shapes.append((type(rows[0]), with_pk))
    params: list[Any] = []
    move_shape = None
    if move:
        move_shape = (move.model, tuple(move.values), move.status_field, tuple(move.where))
        meta = move.model._meta
        params += [
            meta.get_field(name).get_db_prep_save(value, connection)
            for name, value in move.values.items()
        ]
        params += [move.pk, list(move.sources)]
        params += [
            meta.get_field(name).get_db_prep_value(value, connection)
            for name, value in move.where.items()
        ]
    for (model, with_pk), rows in zip(shapes, lists, strict=True):
        params += column_values(insert_fields(model, with_pk=with_pk), rows)
    sql = _statement(tuple(shapes), move_shape, only_if_moved)
    if connection.in_atomic_block:
        with transaction.atomic():
            found = _run(sql, params)
    else:
        found = _run(sql, params)
    moved = bool(found.get("move"))
    if only_if_moved and not moved:
        return False
    for i, rows in enumerate(lists):
        if not shapes[i][1]:
            # Ids are drawn in the order the rows are inserted, which is the arrays' order.
            for row, pk in zip(rows, sorted(found.get(str(i), [])), strict=True):
                row.pk = pk
        for row in rows:
            row._state.adding, row._state.db = False, connection.alias
    return moved


def _run(sql: str, params: list[Any]) -> dict:
    # Bound on the server: the arrays go as parameters, not quoted into the SQL text, and
    # the statement, the same for every call of one shape, can keep its plan.
    with server_cursor(connection) as cursor:
        cursor.execute(sql, params)
        result = cursor.fetchall()
    found: dict = {}
    for which, value in result:
        found.setdefault(which, []).append(value)
    return found


@functools.lru_cache(maxsize=64)
def _statement(
    shapes: tuple[tuple[type[models.Model], bool], ...],
    move: tuple[type[models.Model], tuple[str, ...], str, tuple[str, ...]] | None,
    only_if_moved: bool,
) -> str:
    qn = connection.ops.quote_name
    parts, answers = [], []
    if move:
        model, names, status_field, where = move
        meta = model._meta
        sets = ", ".join(f"{qn(meta.get_field(n).column)} = %s" for n in names)
        status = qn(meta.get_field(status_field).column)
        also = "".join(f" AND {qn(meta.get_field(n).column)} = %s" for n in where)
        parts.append(
            f"m AS (UPDATE {qn(meta.db_table)} SET {sets} "  # noqa: S608
            f"WHERE {qn(meta.pk.column)} = %s AND {status} = ANY(%s::text[]){also} RETURNING 1)"
        )
        answers.append("SELECT 'move', 1 FROM m")
    condition = " WHERE EXISTS (SELECT 1 FROM m)" if only_if_moved else ""
    for i, (model, with_pk) in enumerate(shapes):
        meta = model._meta
        fields = insert_fields(model, with_pk=with_pk)
        columns = ", ".join(qn(f.column) for f in fields)
        parts.append(
            f"i{i} AS (INSERT INTO {qn(meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT * FROM {unnest_arrays(fields)} AS u{condition} "
            f"RETURNING {qn(meta.pk.column)})"
        )
        if not with_pk:
            answers.append(f"SELECT '{i}', {qn(meta.pk.column)} FROM i{i}")  # noqa: S608
    if not answers:
        answers.append("SELECT 'none', 0")
    return f"WITH {', '.join(parts)} {' UNION ALL '.join(answers)}"


# --- rows written later, with others ---------------------------------------------------


@dataclass
class Pending:
    """What code called inside `write_later()` asked to write, and to do once written."""

    rows: list[models.Model] = dc_field(default_factory=list)
    after: list[Callable[[], Any]] = dc_field(default_factory=list)

    def by_model(self) -> list[list[models.Model]]:
        """The rows, one list per model, each in the order they were asked for."""
        grouped: dict[type, list[models.Model]] = {}
        for row in self.rows:
            grouped.setdefault(type(row), []).append(row)
        return list(grouped.values())

    def written(self) -> None:
        """The rows are written: what was to follow them follows their commit."""
        for callback in self.after:
            transaction.on_commit(callback)


_pending: ContextVar[Pending | None] = ContextVar("together_pending", default=None)


@contextmanager
def write_later() -> Iterator[Pending]:
    """Within the block, `save_or_defer` and `on_written` collect instead of acting: the
    caller writes the rows with its own (`write_together`), then calls `written()`; if it
    writes nothing, they are dropped."""
    pending = Pending()
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


def deferring() -> bool:
    """Whether new rows are left to a caller's statement now (inside `write_later()`)."""
    return _pending.get() is not None


def save_or_defer(row: models.Model, *, reserve: bool = False) -> models.Model:
    """Save a new row now, or inside `write_later()` leave it to the caller's statement:
    it has its id once that is written, or at once with `reserve` (one round trip), for
    rows that others written with it name."""
    pending = _pending.get()
    if pending is None:
        row.save(force_insert=True)
        return row
    if reserve:
        reserve_ids([row])
    pending.rows.append(row)
    return row


def on_written(callback: Callable[[], Any]) -> None:
    """Run `callback` once the rows written now commit: `transaction.on_commit`, or inside
    `write_later()`, once the caller's statement has written them."""
    pending = _pending.get()
    if pending is None:
        transaction.on_commit(callback)
    else:
        pending.after.append(callback)
