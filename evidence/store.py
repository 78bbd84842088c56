"""Saving an evidence set with its items.

On PostgreSQL one statement writes both (a data-modifying CTE: the set, then its items
from one array per column), atomic on its own, so the stage spends one round trip and
no transaction on it. Elsewhere the set and its items go in one transaction.
"""

import functools

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone

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
    own = [f for f in EvidenceSet._meta.concrete_fields if not f.primary_key]
    items = [
        f for f in Evidence._meta.concrete_fields if not f.primary_key and f.name != "evidence_set"
    ]
    return own, items


@functools.cache
def _statement() -> str:
    """Identifiers and types come from the models' metadata; every value is a parameter."""
    qn = connection.ops.quote_name
    own, items = _fields()
    set_columns = ", ".join(qn(f.column) for f in own)
    set_values = ", ".join(["%s"] * len(own))
    item_columns = ", ".join(qn(f.column) for f in items)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in items)
    parent = qn(Evidence._meta.get_field("evidence_set").column)
    return (
        f"WITH s AS (INSERT INTO {qn(EvidenceSet._meta.db_table)} ({set_columns}) "  # noqa: S608
        f"VALUES ({set_values}) RETURNING id) "
        f"INSERT INTO {qn(Evidence._meta.db_table)} ({parent}, {item_columns}) "
        f"SELECT s.id, u.* FROM s, unnest({arrays}) AS u "
        f"RETURNING {parent}, id, {qn(Evidence._meta.get_field('key').column)}"
    )


def _save_pg(evidence_set: EvidenceSet, items: list[Evidence]) -> None:
    db = connections[DEFAULT_DB_ALIAS]
    own, fields = _fields()
    if evidence_set.created_at is None:
        evidence_set.created_at = timezone.now()
    params = [f.get_db_prep_save(getattr(evidence_set, f.attname), db) for f in own]
    params += [[f.get_db_prep_save(getattr(i, f.attname), db) for i in items] for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_statement(), params)
        rows = cursor.fetchall()
    evidence_set.pk = rows[0][0]
    ids = {key: pk for _, pk, key in rows}  # a key is unique within its set
    for item in items:
        item.pk = ids[item.key]
        item.evidence_set = evidence_set
