"""Querysets compiled to SQL once per shape, then run again with new values.

Building and compiling a queryset with several subqueries costs the list page more
Python time than PostgreSQL spends answering it. Where only values change between
calls (ids, a user's pk), the SQL text does not: `Compiled` builds the queryset once
with stand-in values, keeps its SQL and its compiler, and afterwards only puts the
real values in the parameters. The queryset stays the one home of the rule; the
values stay bound parameters, never SQL text.
"""

import itertools
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ValuesIterable

from incidents.prepared import server_cursor

# Stand-ins no id takes (negative), yet inside a 32-bit integer column's range: Django
# turns a lookup with a value out of the column's range into no SQL at all.
_stand_ins = itertools.count(-1_900_000_000, -1)


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple
    # (position in params, argument name, index in a list argument or None)
    slots: tuple[tuple[int, str, int | None], ...]
    names: tuple[str, ...]
    compiler: Any  # keeps the converters for this SQL's columns


class Compiled:
    """A `.values()` queryset made by `build(shape, **args)`, with integer (or list of
    integer) arguments that only ever become parameters.

    `rows(shape, **args)`: the rows as dicts, as `list(build(shape, **args))` would give
    them. `shape` is whatever else changes the SQL text (which filters apply); the length
    of each list argument is part of it. Everything else `build` puts in the query is
    fixed at its first call: constants only (no clock, no settings that change). A build whose stand-ins do not all come back
    as parameters is not cached: it runs as a plain queryset every time.
    """

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self.build = build
        self._plans: dict[tuple, _Plan | None] = {}
        self._lock = threading.Lock()

    def rows(self, shape: Hashable = None, /, **args: int | list[int]) -> list[dict[str, Any]]:
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
        names = plan.names
        return [
            dict(zip(names, row, strict=True))
            for row in plan.compiler.results_iter(results=[fetched])
        ]

    def _compile(self, shape: Hashable, args: dict[str, int | list[int]]) -> _Plan | None:
        stand_in: dict[int, tuple[str, int | None]] = {}
        built_args: dict[str, int | list[int]] = {}
        for name, value in args.items():
            if isinstance(value, list):
                built_args[name] = []
                for index in range(len(value)):
                    n = next(_stand_ins)
                    stand_in[n] = (name, index)
                    built_args[name].append(n)
            else:
                n = next(_stand_ins)
                stand_in[n] = (name, None)
                built_args[name] = n
        qs = self.build(shape, **built_args)
        if qs._iterable_class is not ValuesIterable:
            raise TypeError("Compiled needs a .values() queryset")
        query = qs.query
        # The column names as ValuesIterable gives them.
        if query.selected:
            names = list(query.selected)
        else:
            names = [*query.extra_select, *query.values_select, *query.annotation_select]
        compiler = query.get_compiler(qs.db)
        try:
            sql, params = compiler.as_sql()
        except Exception:
            return None  # an empty IN list and the like: no SQL to keep
        slots = tuple(
            (i, *stand_in[p])
            for i, p in enumerate(params)
            if type(p) is int and p in stand_in  # noqa: E721 - True == 1 must not match
        )
        found = {(name, index) for _, name, index in slots}
        if len(found) != len(stand_in) or any(str(n) in sql for n in stand_in):
            return None  # a value went into the text, or vanished: never reuse that SQL
        return _Plan(sql, tuple(params), slots, tuple(names), compiler)


def _cursor(connection: Any) -> Any:
    """On PostgreSQL a cursor that binds on the server: psycopg prepares the statement
    once it has run a few times on a connection, and the planner (a millisecond or more
    for these subqueries) then runs once per connection, not once per page."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    return server_cursor(connection)
