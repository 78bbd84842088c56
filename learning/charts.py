"""Server-side SVG charts: a trend line chart and a stacked bar chart, no build step.

Every label is escaped; the numbers are formatted by us, so the markup is ours alone.
"""

import math

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from incidents.choices import SEVERITIES

W, H, PAD_L, PAD_B, PAD_T = 640, 220, 48, 28, 12
LINE_COLOURS = ["#2563eb", "#d4540b", "#059669", "#7c3aed"]


def _axis(max_value: float, unit: str) -> list[str]:
    parts = []
    for i in range(5):
        value = max_value * i / 4
        y = H - PAD_B - (H - PAD_B - PAD_T) * i / 4
        parts.append(
            f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{value:.0f}{escape(unit)}</text>"
        )
    return parts


def _x(i: int, n: int) -> float:
    return PAD_L + (W - PAD_L - 10) * (i + 0.5) / max(n, 1)


def line_chart(
    labels: list[str], series: dict[str, list[float | None]], *, unit: str = "", title: str = ""
) -> SafeString:
    """One polyline per series; a None breaks the line."""
    values = [v for vals in series.values() for v in vals if v is not None]
    top = max(values, default=0) * 1.1 or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H + 20}" role="img" '
        f'class="chart" aria-label="{escape(title)}">',
        *_axis(top, unit),
    ]
    n = len(labels)
    for i, label in enumerate(labels):
        if n <= 16 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{_x(i, n):.1f}" y="{H - PAD_B + 14}" text-anchor="middle" '
                f'font-size="10">{escape(label)}</text>'
            )
    for k, (name, vals) in enumerate(series.items()):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        segments: list[list[str]] = [[]]
        for i, v in enumerate(vals):
            if v is None:
                segments.append([])
                continue
            y = H - PAD_B - (H - PAD_B - PAD_T) * v / top
            segments[-1].append(f"{_x(i, n):.1f},{y:.1f}")
            parts.append(f'<circle cx="{_x(i, n):.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'points="{" ".join(points)}"/>'
                )
        parts.append(
            f'<rect x="{PAD_L + 130 * k}" y="{H + 6}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{PAD_L + 14 + 130 * k}" y="{H + 15}" font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (labels escaped above)


def stacked_bars(labels: list[str], stacks: dict[str, list[int]], *, title: str = "") -> SafeString:
    """One bar per label, stacked by severity in the severity table's colours."""
    totals = [sum(s[i] for s in stacks.values()) for i in range(len(labels))]
    # Whole-number ticks: the axis has four steps.
    top = math.ceil(max(totals, default=0) * 1.1 / 4) * 4 or 4
    n = len(labels)
    bar = (W - PAD_L - 10) / max(n, 1) * 0.7
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H + 20}" role="img" '
        f'class="chart" aria-label="{escape(title)}">',
        *_axis(top, ""),
    ]
    for i, label in enumerate(labels):
        base = H - PAD_B
        for name, counts in stacks.items():
            height = (H - PAD_B - PAD_T) * counts[i] / top
            if height:
                colour = SEVERITIES[name].colour if name in SEVERITIES else "#999"
                parts.append(
                    f'<rect x="{_x(i, n) - bar / 2:.1f}" y="{base - height:.1f}" '
                    f'width="{bar:.1f}" height="{height:.1f}" fill="{colour}">'
                    f"<title>{escape(name)}: {counts[i]}</title></rect>"
                )
            base -= height
        if n <= 16 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{_x(i, n):.1f}" y="{H - PAD_B + 14}" text-anchor="middle" '
                f'font-size="10">{escape(label)}</text>'
            )
    for k, name in enumerate(stacks):
        colour = SEVERITIES[name].colour if name in SEVERITIES else "#999"
        parts.append(
            f'<rect x="{PAD_L + 80 * k}" y="{H + 6}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{PAD_L + 14 + 80 * k}" y="{H + 15}" font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (labels escaped above)
