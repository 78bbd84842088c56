"""Reliability metrics computed in the database: MTTA, MTTR and time to detect.

Per week or month, overall or per service or severity, with counts, means and
percentiles. One aggregate query per figure set, whatever the number of incidents:
PostgreSQL uses percentile_cont; SQLite, which has none, gets the same linear
interpolation from window functions (row number and count per group).

Figures are measured from detection as `incidents.metrics` defines them:
time to acknowledge = acknowledged - detected, time to resolve = resolved - detected,
time to detect = detected - the first alert's start (incidents with alerts only).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    F,
    Value,
)
from django.db.models.functions import TruncMonth, TruncWeek

from incidents.models import Alert, Incident

METRICS = ("tta", "ttr", "ttd")
PERCENTILES = (0.5, 0.9)
BUCKETS = {"week": TruncWeek, "month": TruncMonth}
GROUPS = {"service": "service", "severity": "severity", "": None}


def _seconds_sql(end: str, start: str) -> str:
    """SQL for end - start in seconds (a float), NULL when either is NULL, never negative."""
    if connection.vendor == "postgresql":
        diff = f"EXTRACT(EPOCH FROM ({end} - {start}))::double precision"
    else:
        diff = f"((julianday({end}) - julianday({start})) * 86400.0)"
    return f"(CASE WHEN {diff} < 0 THEN 0.0 ELSE {diff} END)"


def _figures_sql(since: datetime, until: datetime, bucket: str, group: str) -> tuple[str, tuple]:
    """One row per incident: bucket, grp and its three durations.

    The first alert's start comes from one grouped pass over the window's alerts,
    joined in, not a subquery per incident: that form ran once per aggregate per
    incident and its cost estimate made PostgreSQL spend longer JIT-compiling the
    query than running it.
    """
    window = Incident.objects.filter(detected_at__gte=since, detected_at__lt=until).order_by()
    qs = window.annotate(
        bucket=BUCKETS[bucket]("detected_at"),
        grp=F(GROUPS[group]) if GROUPS[group] else Value(""),
    ).values("bucket", "grp", "detected_at", "acknowledged_at", "resolved_at", incident=F("pk"))
    incidents_sql, incidents_params = qs.query.sql_with_params()
    ids_sql, ids_params = window.values("pk").query.sql_with_params()
    alerts = Alert._meta.db_table
    sql = f"""
        SELECT i.bucket AS bucket, i.grp AS grp,
               {_seconds_sql("i.acknowledged_at", "i.detected_at")} AS tta,
               {_seconds_sql("i.resolved_at", "i.detected_at")} AS ttr,
               {_seconds_sql("i.detected_at", "fa.first_start")} AS ttd
        FROM ({incidents_sql}) AS i
        LEFT JOIN (
            SELECT incident_id, MIN(starts_at) AS first_start FROM {alerts}
            WHERE starts_at IS NOT NULL AND incident_id IN ({ids_sql})
            GROUP BY incident_id
        ) AS fa ON fa.incident_id = i.incident
    """  # noqa: S608 (our own compiled queries and constants, values bound as params)
    return sql, (*incidents_params, *ids_params)


@dataclass
class Row:
    bucket: str  # the period's first day, YYYY-MM-DD
    group: str
    count: int = 0
    figures: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def get(self, metric: str, stat: str) -> float | None:
        return self.figures.get(metric, {}).get(stat)


def _key(bucket: Any) -> str:
    return str(bucket)[:10]


def _sqlite_percentiles(figures: str, params: tuple, metric: str) -> dict[tuple[str, str], dict]:
    """Linear-interpolated percentiles per (bucket, group), as percentile_cont computes them."""
    picks = []
    for p in PERCENTILES:
        pos = f"((n - 1) * {p})"
        lo = f"MAX(CASE WHEN rn = CAST({pos} AS INTEGER) THEN v END)"
        hi = f"MAX(CASE WHEN rn = CAST({pos} AS INTEGER) + 1 THEN v END)"
        frac = f"({pos} - CAST({pos} AS INTEGER))"
        picks.append(f"{lo} + {frac} * (COALESCE({hi}, {lo}) - {lo})")
    sql = f"""
        SELECT bucket, grp, {", ".join(picks)} FROM (
            SELECT bucket, grp, v,
                   ROW_NUMBER() OVER (PARTITION BY bucket, grp ORDER BY v) - 1 AS rn,
                   COUNT(*) OVER (PARTITION BY bucket, grp) AS n
            FROM (SELECT bucket, grp, {metric} AS v FROM ({figures}) AS f) AS b
            WHERE v IS NOT NULL
        ) AS ranked GROUP BY bucket, grp
    """  # noqa: S608 (our own compiled query and constants, values bound as params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {
            (_key(b), g or ""): {
                f"p{int(p * 100)}": v for p, v in zip(PERCENTILES, vals, strict=True)
            }
            for b, g, *vals in cursor.fetchall()
        }


def reliability(
    *, since: datetime, until: datetime, bucket: str = "week", group: str = ""
) -> list[Row]:
    """Rows per (period, group), oldest period first: count, and per metric n/mean/p50/p90."""
    if bucket not in BUCKETS or group not in GROUPS:
        raise ValueError("bucket is week or month; group is service, severity or empty")
    figures, params = _figures_sql(since, until, bucket, group)
    postgres = connection.vendor == "postgresql"
    columns = ["COUNT(*)"]
    for metric in METRICS:
        columns += [f"COUNT({metric})", f"AVG({metric})"]
        if postgres:
            columns += [
                f"percentile_cont({p}) WITHIN GROUP (ORDER BY {metric})" for p in PERCENTILES
            ]
    sql = f"""
        SELECT bucket, grp, {", ".join(columns)} FROM ({figures}) AS f
        GROUP BY bucket, grp ORDER BY bucket, grp
    """  # noqa: S608 (our own compiled query and constants, values bound as params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows: dict[tuple[str, str], Row] = {}
    for bucket_value, grp, count, *values in found:
        row = Row(bucket=_key(bucket_value), group=grp or "", count=count)
        it = iter(values)
        for metric in METRICS:
            n, mean = next(it), next(it)
            pcts = {f"p{int(p * 100)}": (next(it) if postgres else None) for p in PERCENTILES}
            row.figures[metric] = {"n": n, "mean": mean, **pcts}
        rows[(row.bucket, row.group)] = row
    if not postgres:
        for metric in METRICS:
            for key, pcts in _sqlite_percentiles(figures, params, metric).items():
                if key in rows:
                    rows[key].figures[metric].update(pcts)
    return list(rows.values())


def severity_mix(*, since: datetime, until: datetime, bucket: str = "week") -> list[dict]:
    """Incident counts per period and severity, for the stacked chart."""
    return list(
        Incident.objects.filter(detected_at__gte=since, detected_at__lt=until)
        .annotate(bucket=BUCKETS[bucket]("detected_at"))
        .values("bucket", "severity")
        .annotate(count=Count("pk"))
        .order_by("bucket", "severity")
    )
