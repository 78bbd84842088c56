"""Where a metric changed, and by how much: one change point, found robustly.

Method: the single split that minimises the L1 cost (sum of absolute deviations from
each segment's median), which is what `ruptures` computes with `Binseg(model="l1")`
for one breakpoint; written out here because one split over ~100 points needs no
numerical library. Medians and absolute deviations make one spike or a missing
scrape move nothing. A split counts only when the shift is large against the noise of
the segment before it (robust z from the median absolute deviation) and large in
relative terms, so a flat but jittery series reports no onset.
"""

import statistics
from dataclasses import asdict, dataclass

MIN_SEGMENT = 3
MIN_SCORE = 4.0  # shift in robust standard deviations of the baseline
MIN_RELATIVE = 0.2  # and at least 20% of the baseline (or of the after level, from zero)


@dataclass
class ChangePoint:
    index: int
    time: float
    before: float
    after: float
    change_pct: float | None
    score: float
    direction: str  # up | down

    def as_dict(self) -> dict:
        return asdict(self)


def _l1(values: list[float]) -> float:
    med = statistics.median(values)
    return sum(abs(v - med) for v in values)


def _mad(values: list[float]) -> float:
    med = statistics.median(values)
    return 1.4826 * statistics.median([abs(v - med) for v in values])


def detect(points: list[tuple[float, float]]) -> ChangePoint | None:
    """The most significant level shift in `points` ((unix time, value), time-ordered), or None."""
    values = [v for _, v in points]
    n = len(values)
    if n < 2 * MIN_SEGMENT:
        return None
    best_k, best_cost = None, float("inf")
    for k in range(MIN_SEGMENT, n - MIN_SEGMENT + 1):
        cost = _l1(values[:k]) + _l1(values[k:])
        if cost < best_cost:
            best_k, best_cost = k, cost
    if best_k is None:
        return None
    left, right = values[:best_k], values[best_k:]
    before, after = statistics.median(left), statistics.median(right)
    shift = after - before
    scale = max(abs(before), abs(after))
    # A flat baseline has no spread: fall back to a small share of the level.
    noise = max(_mad(left), 0.02 * abs(before), 1e-9)
    score = abs(shift) / noise
    if score < MIN_SCORE or abs(shift) < MIN_RELATIVE * (abs(before) or scale):
        return None
    pct = round(shift / abs(before) * 100, 1) if before else None
    return ChangePoint(
        index=best_k,
        time=points[best_k][0],
        before=round(before, 6),
        after=round(after, 6),
        change_pct=pct,
        score=round(min(score, 1e6), 1),
        direction="up" if shift > 0 else "down",
    )
