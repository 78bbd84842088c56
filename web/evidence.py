"""The incident page's evidence section: what the context stage found, shaped for a
person to look at (a change strip, a sparkline per golden signal with the onset marked,
log templates with "new" badges, similar incidents, hypotheses linked to evidence)."""

from datetime import datetime
from typing import Any

from evidence.models import Evidence, EvidenceSet
from evidence.selectors import latest_set
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook

WIDTH, HEIGHT = 240, 44
STRIP_MINUTES = (-120, 10)  # the change strip spans 2 h before onset to 10 min after


def _x(value: float, low: float, high: float, width: float = WIDTH) -> float:
    return round((value - low) / (high - low) * width, 1) if high > low else 0.0


def sparkline(points: list, onset: float, change: dict | None) -> dict[str, Any]:
    """An SVG polyline of the series and the x of the incident's and the metric's onsets."""
    times = [p[0] for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    span = (v1 - v0) or 1.0
    line = " ".join(
        f"{_x(t, t0, t1)},{round(HEIGHT - 2 - (v - v0) / span * (HEIGHT - 4), 1)}"
        for t, v in points
    )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "points": line,
        "incident_x": _x(onset, t0, t1) if t0 <= onset <= t1 else None,
        "change_x": _x(change["time"], t0, t1) if change else None,
        "low": v0,
        "high": v1,
    }


def _changes(items: list[Evidence]) -> list[dict]:
    out = []
    low, high = STRIP_MINUTES
    for e in items:
        minutes = -float(e.data.get("minutes_before_onset") or 0)
        out.append(
            {
                "key": e.key,
                "summary": e.summary,
                "kind": e.data.get("kind", ""),
                "link": e.data.get("link", ""),
                "x": _x(min(max(minutes, low), high), low, high, 100),
            }
        )
    return out


_UNREAD: Any = object()


def _hypotheses(incident_id: int, runbook: Any = _UNREAD) -> tuple[dict | None, list[dict]]:
    if runbook is _UNREAD:
        runbook = (
            Runbook.objects.filter(incident_id=incident_id, status=RunbookStatus.READY)
            .order_by("-version")
            .only("artifact")
            .first()
        )
    diagnosis = (runbook.artifact or {}).get("diagnosis") if runbook else None
    if not isinstance(diagnosis, dict):
        return None, []
    return diagnosis, [h for h in diagnosis.get("hypotheses") or [] if isinstance(h, dict)]


def evidence_section(
    incident_id: int,
    *,
    evidence_set: EvidenceSet | None = None,
    items: list[Evidence] | None = None,
    runbook: Any = _UNREAD,
) -> dict[str, Any] | None:
    """The section's data; a page that read the set, its items and the newest ready
    runbook already passes them in."""
    if evidence_set is None:
        evidence_set = latest_set(incident_id)
        if evidence_set is None:
            return None
    if items is None:
        items = list(Evidence.objects.filter(evidence_set=evidence_set).order_by("id"))
    onset: datetime = evidence_set.onset
    by = {c: [e for e in items if e.collector == c] for c in ("changes", "metrics", "logs")}
    signals = []
    for e in by["metrics"]:
        points = e.data.get("points") or []
        signals.append(
            {
                "key": e.key,
                "summary": e.summary,
                "status": e.status,
                "signal": e.data.get("signal", ""),
                "spark": sparkline(points, onset.timestamp(), e.data.get("change"))
                if len(points) >= 2
                else None,
            }
        )
    diagnosis, hypotheses = _hypotheses(incident_id, runbook)
    return {
        "set": evidence_set,
        "onset": onset,
        "items": items,
        "changes": _changes([e for e in by["changes"] if e.status == "ok"]),
        "signals": signals,
        "logs": [e for e in by["logs"] if e.status == "ok"],
        "similar": [e for e in items if e.collector == "similar" and e.status == "ok"],
        "diagnosis": diagnosis,
        "hypotheses": hypotheses,
        "problems": [e for e in items if e.status in ("error", "timeout")],
    }
