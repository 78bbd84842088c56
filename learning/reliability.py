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
    Aggregate,
    Avg,
    Count,
    F,
    FloatField,
    Func,
    Min,
    OuterRef,
    Subquery,
    Value,
)
from django.db.models.functions import TruncMonth, TruncWeek

from incidents.models import Alert, Incident

METRICS = ("tta", "ttr", "ttd")
PERCENTILES = (0.5, 0.9)
BUCKETS = {"week": TruncWeek, "month": TruncMonth}
GROUPS = {"service": "service", "severity": "severity", "": None}


class Seconds(Func):
    """end - start in seconds (a float), NULL when either is NULL, never negative."""

    output_field = FloatField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_sql(self, compiler, connection, **extra):  # noqa: ANN001, ANN201
        end, end_params = compiler.compile(self.source_expressions[0])
        start, start_params = compiler.compile(self.source_expressions[1])
        if connection.vendor == "postgresql":
            diff = f"EXTRACT(EPOCH FROM ({end} - {start}))::double precision"
        else:
            diff = f"((julianday({end}) - julianday({start})) * 86400.0)"
        params = (*end_params, *start_params)
        sql = f"(CASE WHEN {diff} < 0 THEN 0.0 ELSE {diff} END)"
        return sql, params * 2


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(p) WITHIN GROUP (ORDER BY expr); NULLs are ignored."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        super().__init__(expression, percentile=float(percentile), **extra)


def _first_alert_start() -> Subquery:
    return Subquery(
        Alert.objects.filter(incident=OuterRef("pk"), starts_at__isnull=False)
        .values("incident")
        .annotate(start=Min("starts_at"))
        .values("start")[:1]
    )


def _base(since: datetime, until: datetime, bucket: str, group: str):  # noqa: ANN202
    qs = Incident.objects.filter(detected_at__gte=since, detected_at__lt=until).annotate(
        bucket=BUCKETS[bucket]("detected_at"),
        grp=F(GROUPS[group]) if GROUPS[group] else Value(""),
        tta=Seconds(F("acknowledged_at"), F("detected_at")),
        ttr=Seconds(F("resolved_at"), F("detected_at")),
        ttd=Seconds(F("detected_at"), _first_alert_start()),
    )
    return qs.order_by()


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


def _sqlite_percentiles(qs: Any, metric: str) -> dict[tuple[str, str], dict[str, float]]:
    """Linear-interpolated percentiles per (bucket, group), as percentile_cont computes them."""
    inner, params = qs.values("bucket", "grp", metric).query.sql_with_params()
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
            FROM (SELECT bucket, grp, {metric} AS v FROM ({inner}) AS base) AS b
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
    qs = _base(since, until, bucket, group)
    aggregates: dict[str, Any] = {"count": Count("pk")}
    for metric in METRICS:
        aggregates[f"{metric}_n"] = Count(metric)
        aggregates[f"{metric}_mean"] = Avg(metric)
        if connection.vendor == "postgresql":
            for p in PERCENTILES:
                aggregates[f"{metric}_p{int(p * 100)}"] = PercentileCont(metric, p)
    rows: dict[tuple[str, str], Row] = {}
    for values in qs.values("bucket", "grp").annotate(**aggregates).order_by("bucket", "grp"):
        row = Row(bucket=_key(values["bucket"]), group=values["grp"] or "", count=values["count"])
        for metric in METRICS:
            row.figures[metric] = {
                "n": values[f"{metric}_n"],
                "mean": values[f"{metric}_mean"],
                **{
                    f"p{int(p * 100)}": values.get(f"{metric}_p{int(p * 100)}") for p in PERCENTILES
                },
            }
        rows[(row.bucket, row.group)] = row
    if connection.vendor != "postgresql":
        for metric in METRICS:
            for key, found in _sqlite_percentiles(qs, metric).items():
                if key in rows:
                    rows[key].figures[metric].update(found)
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
