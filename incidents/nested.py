"""Small lists nested in an outer row as one JSON array, so a page reads them in the
same round trip as the row they belong to (PostgreSQL's json_agg, SQLite's
json_group_array; the shape PostgREST uses for embedded resources).

Only for short, bounded lists of plain columns (text, numbers, booleans, times): the
rows come back as lists of values in the order of `columns`, sorted by the first one.
"""

import json
from datetime import UTC, datetime
from typing import Any

from django.db.models import F, QuerySet, Subquery, TextField
from django.utils.dateparse import parse_datetime


class JSONRows(Subquery):
    """`queryset`'s rows as a JSON array of arrays (text), '[]' when there are none.

    Each column is a field path of the queryset's model (`author__username` works);
    the first column is the sort key, since neither database promises to aggregate
    in the subquery's order.
    """

    output_field = TextField()

    def __init__(self, queryset: QuerySet, *columns: str) -> None:
        self.columns = columns
        aliased = {f"c{i}": F(path) for i, path in enumerate(columns)}
        super().__init__(queryset.values(**aliased))

    def as_sql(self, compiler, connection, template=None, **extra_context):
        names = ", ".join(f"_rows.c{i}" for i in range(len(self.columns)))
        if connection.vendor == "postgresql":
            aggregate = f"COALESCE(json_agg(json_build_array({names})), '[]')::text"
        else:
            aggregate = f"COALESCE(json_group_array(json_array({names})), '[]')"
        # Only our own column aliases (c0, c1, ...) go into the text; values stay bound.
        template = f"(SELECT {aggregate} FROM (%(subquery)s) _rows)"  # noqa: S608
        return super().as_sql(compiler, connection, template=template, **extra_context)


def rows(value: str | None) -> list[list[Any]]:
    """The decoded rows of a JSONRows column, sorted by their first value."""
    decoded = json.loads(value) if value else []
    return sorted(decoded, key=lambda row: (row[0] is None, row[0]))


def moment(value: str | None) -> datetime | None:
    """A timestamp from JSON: PostgreSQL writes it with its offset, SQLite as naive UTC."""
    if not value:
        return None
    parsed = parse_datetime(value.replace(" ", "T", 1))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
