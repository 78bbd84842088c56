"""PostgreSQL only: new alerts and their outbox row in one prepared statement (a plain
VALUES row for a one-alert delivery, arrays unnested for more).

Most deliveries bring new alerts; for them this is the whole request. Everything else
(repeats, SQLite, eager Celery) takes the general path in `store.py`.
"""

import functools
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

from incidents.models import Alert, AlertSource, IngestOutbox
from incidents.prepared import server_cursor

from .base import ParsedAlert
from .queue import eager
from .rows import new_values
from .severity import severity_normalise


def insert_directly(parsed: list[ParsedAlert]) -> bool:
    """Whether the one-statement insert applies: PostgreSQL, a worker to process later, and
    only alerts that may create rows, each key once (repeats take the general path)."""
    return (
        bool(parsed)
        and connection.vendor == "postgresql"
        and not eager()
        and not any(p.update_only for p in parsed)
        and len({p.dedup_key for p in parsed}) == len(parsed)
    )


def insert_new(
    source: AlertSource, parsed: list[ParsedAlert], now: datetime
) -> tuple[int, int | None, list[ParsedAlert]]:
    """Insert the alerts whose keys are new, and their outbox row, in one statement:
    (alerts created, the outbox row's id or None, the alerts left for the general path).

    Most deliveries bring new alerts; for them this is the whole request: one round trip,
    atomic on its own (a data-modifying CTE), committed with the statement in autocommit.
    Keys that exist already (or that a concurrent delivery is inserting: ON CONFLICT waits
    for it) come back for the general path, which compares and updates them.
    """
    rows = [
        new_values(
            source, p, severity_normalise(p.source_severity, source.severity_mapping),
            p.content_hash(), now,
        )
        for p in parsed
    ]  # fmt: skip
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the proxy costs per attribute
    if len(rows) == 1:
        # Most deliveries carry one alert: a plain VALUES row, no arrays to build or unnest.
        sql, fields = _insert_one_statement()
        [row] = rows
        params: list[Any] = [f.get_db_prep_save(row[f.attname], db) for f in fields]
    else:
        # One array per column: the statement has one shape for any number of alerts, so
        # PostgreSQL plans it once per connection (prepared) instead of once per delivery.
        sql, fields = _insert_statement()
        params = [[f.get_db_prep_save(row[f.attname], db) for row in rows] for f in fields]
    params += [source.pk, now]
    inserted = _execute_prepared(sql, params)
    if not inserted:
        return 0, None, parsed
    done = {key for _, key, _ in inserted}
    return len(inserted), inserted[0][2], [p for p in parsed if p.dedup_key not in done]


def _alerts_and_outbox(rows: str, alert_ids: str, having: str = "") -> str:
    """INSERT the alerts `rows` gives (skipping known ones) and one outbox row listing
    their ids, in one statement. Identifiers come from the models' metadata; every value
    is a bound parameter."""
    fields = _alert_fields()
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    box = IngestOutbox._meta.db_table
    return (
        f"WITH ins AS (INSERT INTO {qn(Alert._meta.db_table)} ({columns}) {rows} "  # noqa: S608
        "ON CONFLICT (source_id, dedup_key) DO NOTHING RETURNING id, dedup_key), "
        f"box AS (INSERT INTO {qn(box)} (source_id, alert_ids, created_at, attempts, "
        f"last_error) SELECT %s, {alert_ids}, %s, 0, '' FROM ins {having} RETURNING id) "
        "SELECT ins.id, ins.dedup_key, (SELECT id FROM box) FROM ins"
    )


@functools.cache
def _alert_fields() -> list[models.Field]:
    return [f for f in Alert._meta.concrete_fields if not f.primary_key]


@functools.cache
def _insert_statement() -> tuple[str, list[models.Field]]:
    """New alerts from one array per column, and their outbox row (none if all known)."""
    fields = _alert_fields()
    arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
    rows = f"SELECT * FROM unnest({arrays})"  # noqa: S608 (types from the models' metadata)
    return _alerts_and_outbox(rows, "jsonb_agg(id ORDER BY id)", "HAVING count(*) > 0"), fields


@functools.cache
def _insert_one_statement() -> tuple[str, list[models.Field]]:
    """One new alert from one VALUES row, and its outbox row: no arrays to build."""
    fields = _alert_fields()
    values = ", ".join(["%s"] * len(fields))
    return _alerts_and_outbox(f"VALUES ({values})", "jsonb_build_array(id)"), fields


def _execute_prepared(sql: str, params: list[Any]) -> list[tuple]:
    """Run one statement as a server-side prepared statement on Django's connection."""
    with server_cursor(connection, always_prepare=True) as cur:
        cur.execute(sql, params)
        return cur.fetchall()
