"""Querysets compiled to SQL once per shape, then run again with new values.

Building and compiling a queryset with several subqueries costs more Python time than
PostgreSQL spends answering it (the list page's reads, the context stage's). Where
only values change between calls (ids, a user's pk, a service name, a time window), the
SQL text does not: `Compiled` builds the queryset once with stand-in values, keeps its
SQL and its compiler, and afterwards only puts the real values in the parameters. The
queryset stays the one home of the rule; the values stay bound parameters, never SQL
text.
"""

import itertools
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable, get_related_populators

from incidents.prepared import server_cursor

Value = int | str | datetime
Argument = Value | list[Value]

# Stand-ins no real value takes. Integers: negative, yet inside a 32-bit column's range
# (Django turns a lookup with a value out of the column's range into no SQL at all).
# Times: microseconds after the year 1, when nothing happened. Text: a marker no name
# carries.
_serial = itertools.count(1)
_EPOCH = datetime(1, 1, 2, tzinfo=UTC)


def _stand_in(value: Value) -> Value:
    n = next(_serial)
    if isinstance(value, bool):
        raise TypeError("Compiled takes no booleans (each value is its own shape)")
    if isinstance(value, int):
        return -1_900_000_000 - n
    if isinstance(value, datetime):
        return _EPOCH + timedelta(microseconds=n)
    if isinstance(value, str):
        return f"\x1ecompiled-stand-in-{n}\x1e"
    raise TypeError(f"Compiled binds int, str or datetime values, not {type(value).__name__}")


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple
    # (position in params, argument name, index in a list argument or None)
    slots: tuple[tuple[int, str, int | None], ...]
    compiler: Any  # keeps the converters for this SQL's columns
    make: Callable[[list[tuple]], list]  # the fetched rows as the queryset gives them


class Compiled:
    """A queryset made by `build(shape, **args)`, whose arguments (int, str or datetime
    values, or lists of them) only ever become parameters.

    `rows(shape, **args)`: what `list(build(shape, **args))` would give: dicts for a
    `.values()` queryset, model instances (with select_related and annotations) for a
    model queryset; `first(shape, **args)` its first row or None. `shape` is whatever
    else changes the SQL text (which filters apply); the length of each list argument is
    part of it. Everything else `build` puts in the query is fixed at its first call:
    constants only (no clock, no settings that change). A build whose stand-ins do not
    all come back as parameters is not cached: it runs as a plain queryset every time
    (so do times on SQLite, whose backend turns them into text).
    """

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self.build = build
        self._plans: dict[tuple, _Plan | None] = {}
        self._lock = threading.Lock()

    def rows(self, shape: Hashable = None, /, **args: Argument) -> list[Any]:
        key = (shape, tuple((k, len(v) if isinstance(v, list) else None) for k, v in args.items()))
        plan = self._plans.get(key, False)
        if plan is False:
            plan = self._compile(shape, args)
            with self._lock:
                self._plans[key] = plan
        if plan is None:
            return list(self.build(shape, **args))
        params = list(plan.params)
        for position, name, index in plan.slots:
            value = args[name]
            params[position] = value[index] if index is not None else value
        with _cursor(connections[plan.compiler.using]) as cursor:
            cursor.execute(plan.sql, params)
            fetched = cursor.fetchall()
        return plan.make(list(plan.compiler.results_iter(results=[fetched])))

    def first(self, shape: Hashable = None, /, **args: Argument) -> Any:
        """The first of `rows(shape, **args)`, or None: for a build that reads one row."""
        found = self.rows(shape, **args)
        return found[0] if found else None

    def _compile(self, shape: Hashable, args: dict[str, Argument]) -> _Plan | None:
        stand_in: dict[tuple[type, Value], tuple[str, int | None]] = {}
        built_args: dict[str, Argument] = {}
        for name, value in args.items():
            if isinstance(value, list):
                built_args[name] = []
                for index, item in enumerate(value):
                    s = _stand_in(item)
                    stand_in[(type(s), s)] = (name, index)
                    built_args[name].append(s)
            else:
                s = _stand_in(value)
                stand_in[(type(s), s)] = (name, None)
                built_args[name] = s
        qs = self.build(shape, **built_args)
        compiler = qs.query.get_compiler(qs.db)
        try:
            sql, params = compiler.as_sql()
        except Exception:
            return None  # an empty IN list and the like: no SQL to keep
        if qs._iterable_class is ValuesIterable:
            make = _dicts(qs)
        elif qs._iterable_class is ModelIterable:
            if qs._prefetch_related_lookups or qs._known_related_objects:
                raise TypeError("Compiled reads one statement: no prefetch_related")
            make = _instances(compiler)
        else:
            raise TypeError("Compiled needs a model or a .values() queryset")
        slots = tuple(
            (i, *stand_in[(type(p), p)])
            for i, p in enumerate(params)
            if (type(p), p) in stand_in  # by type too: True == 1 must not match
        )
        found = {(name, index) for _, name, index in slots}
        if len(found) != len(stand_in) or any(str(s) in sql for _, s in stand_in):
            return None  # a value went into the text, or vanished: never reuse that SQL
        return _Plan(sql, tuple(params), slots, compiler, make)


def _dicts(qs: QuerySet) -> Callable[[list[tuple]], list[dict[str, Any]]]:
    query = qs.query
    # The column names as ValuesIterable gives them.
    if query.selected:
        names = tuple(query.selected)
    else:
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
    return lambda rows: [dict(zip(names, row, strict=True)) for row in rows]


def _instances(compiler: Any) -> Callable[[list[tuple]], list[Any]]:
    """Model instances from the rows, as Django's ModelIterable makes them (its select,
    related populators and annotation columns were set up by `as_sql`)."""
    select, klass_info, annotations = (
        compiler.select,
        compiler.klass_info,
        compiler.annotation_col_map,
    )
    model, db = klass_info["model"], compiler.using
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    init_list = [f[0].target.attname for f in select[start:end]]
    related = get_related_populators(klass_info, select, db)

    def make(rows: list[tuple]) -> list[Any]:
        objects = []
        for row in rows:
            obj = model.from_db(db, init_list, row[start:end])
            for populator in related:
                populator.populate(row, obj)
            for name, position in (annotations or {}).items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects

    return make


def _cursor(connection: Any) -> Any:
    """On PostgreSQL a cursor that binds on the server: psycopg prepares the statement
    once it has run a few times on a connection, and the planner (a millisecond or more
    for these subqueries) then runs once per connection, not once per call."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    return server_cursor(connection)
