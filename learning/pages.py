"""What the metrics page shows, read in a fixed number of queries."""

from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from incidents.choices import Severity

from .charts import line_chart, stacked_bars
from .drafting.facts import humanize
from .reliability import BUCKETS, GROUPS, reliability, severity_mix


def _periods(now: Any, bucket: str, count: int) -> tuple[Any, list[str]]:
    """The start of the window and the labels of its periods, oldest first."""
    today = timezone.localtime(now).date()
    if bucket == "week":
        first = today - timedelta(days=today.weekday()) - timedelta(weeks=count - 1)
        labels = [(first + timedelta(weeks=i)).isoformat() for i in range(count)]
    else:
        y, m = today.year, today.month
        months = []
        for _ in range(count):
            months.append((y, m))
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        labels = [f"{y:04d}-{m:02d}-01" for y, m in reversed(months)]
        first = date.fromisoformat(labels[0])
    since = timezone.make_aware(datetime.combine(first, time.min))
    return since, labels


def metrics_page_context(params: Any) -> dict:
    bucket = params.get("bucket", "week")
    bucket = bucket if bucket in BUCKETS else "week"
    group = params.get("group", "service")
    group = group if group in GROUPS and group else "service"
    count = 12 if bucket == "week" else 6
    now = timezone.now()
    since, labels = _periods(now, bucket, count)
    overall = {r.bucket: r for r in reliability(since=since, until=now, bucket=bucket)}

    def series(metric: str, stat: str) -> list[float | None]:
        out = []
        for label in labels:
            row = overall.get(label)
            value = row.get(metric, stat) if row else None
            out.append(None if value is None else value / 60)
        return out

    trend = line_chart(
        [label[5:] for label in labels],
        {
            "MTTA mean": series("tta", "mean"),
            "MTTA p90": series("tta", "p90"),
            "MTTR mean": series("ttr", "mean"),
            "MTTR p90": series("ttr", "p90"),
        },
        unit="m",
        title="Time to acknowledge and resolve, minutes",
    )
    mix: dict[str, list[int]] = {s: [0] * len(labels) for s in Severity.values}
    index = {label: i for i, label in enumerate(labels)}
    for row in severity_mix(since=since, until=now, bucket=bucket):
        i = index.get(str(row["bucket"])[:10])
        if i is not None and row["severity"] in mix:
            mix[row["severity"]][i] = row["count"]
    # The whole window per group: one more aggregate query.
    window = timedelta(days=7 * count) if bucket == "week" else timedelta(days=31 * count)
    by_group = reliability(since=now - window, until=now, bucket="month", group=group)
    grouped: dict[str, dict] = {}
    for row in by_group:
        g = grouped.setdefault(row.group or "(none)", {"count": 0, "rows": []})
        g["count"] += row.count
        g["rows"].append(row)
    table = [
        {
            "group": name,
            "count": g["count"],
            "months": [
                {
                    "bucket": r.bucket[:7],
                    "count": r.count,
                    "tta_mean": humanize(r.get("tta", "mean")),
                    "tta_p50": humanize(r.get("tta", "p50")),
                    "tta_p90": humanize(r.get("tta", "p90")),
                    "ttr_mean": humanize(r.get("ttr", "mean")),
                    "ttr_p50": humanize(r.get("ttr", "p50")),
                    "ttr_p90": humanize(r.get("ttr", "p90")),
                    "ttd_mean": humanize(r.get("ttd", "mean")),
                }
                for r in g["rows"]
            ],
        }
        for name, g in sorted(grouped.items(), key=lambda kv: -kv[1]["count"])
    ]
    periods = [
        {
            "label": label,
            "count": overall[label].count if label in overall else 0,
            "tta_mean": humanize(overall[label].get("tta", "mean")) if label in overall else "—",
            "tta_p90": humanize(overall[label].get("tta", "p90")) if label in overall else "—",
            "ttr_mean": humanize(overall[label].get("ttr", "mean")) if label in overall else "—",
            "ttr_p90": humanize(overall[label].get("ttr", "p90")) if label in overall else "—",
            "ttd_mean": humanize(overall[label].get("ttd", "mean")) if label in overall else "—",
        }
        for label in labels
    ]
    return {
        "bucket": bucket,
        "group": group,
        "trend_chart": trend,
        "mix_chart": stacked_bars(
            [label[5:] for label in labels], mix, title="Incidents per period by severity"
        ),
        "periods": periods,
        "table": table,
    }
