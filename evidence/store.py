"""Saving an evidence set with its items.

On PostgreSQL one statement writes both (a data-modifying CTE: the set, then its items
from one array per column), atomic on its own, so the stage spends one round trip and
no transaction on it. Elsewhere the set and its items go in one transaction.
"""

import functools

from django.db import connection, models, transaction

from incidents.prepared import server_cursor
from incidents.together import column_values, insert_fields, unnest_arrays

from .models import Evidence, EvidenceSet


def evidence_save(evidence_set: EvidenceSet, items: list[Evidence]) -> None:
    """Store the set and its items; the set gets its id and the items theirs."""
    if connection.vendor == "postgresql" and items:
        _save_pg(evidence_set, items)
        return
    with transaction.atomic():
        evidence_set.save()
        for item in items:
            item.evidence_set = evidence_set  # the id it has now
        Evidence.objects.bulk_create(items)


@functools.cache
def _fields() -> tuple[list[models.Field], list[models.Field]]:
    """(the set's columns, the items' columns but their set): everything but the ids."""
    items = [f for f in insert_fields(Evidence) if f.name != "evidence_set"]
    return insert_fields(EvidenceSet), items


@functools.cache
def _statement() -> str:
    """Identifiers and types come from the models' metadata; every value is a parameter."""
    qn = connection.ops.quote_name
    own, items = _fields()
    set_columns = ", ".join(qn(f.column) for f in own)
    set_values = ", ".join(["%s"] * len(own))
    item_columns = ", ".join(qn(f.column) for f in items)
    parent = qn(Evidence._meta.get_field("evidence_set").column)
    return (
        f"WITH s AS (INSERT INTO {qn(EvidenceSet._meta.db_table)} ({set_columns}) "  # noqa: S608
        f"VALUES ({set_values}) RETURNING id) "
        f"INSERT INTO {qn(Evidence._meta.db_table)} ({parent}, {item_columns}) "
        f"SELECT s.id, u.* FROM s, {unnest_arrays(items)} AS u "
        f"RETURNING {parent}, id, {qn(Evidence._meta.get_field('key').column)}"
    )


def _save_pg(evidence_set: EvidenceSet, items: list[Evidence]) -> None:
    own, fields = _fields()
    params = column_values(own, [evidence_set])
    params = [column[0] for column in params] + column_values(fields, items)
    with server_cursor(connection) as cursor:
        cursor.execute(_statement(), params)
        rows = cursor.fetchall()
    evidence_set.pk = rows[0][0]
    ids = {key: pk for _, pk, key in rows}  # a key is unique within its set
    for item in items:
        item.pk = ids[item.key]
        item.evidence_set = evidence_set
