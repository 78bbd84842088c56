"""One line per figure a bench measures, gathered by bench/run.py into one table.

A bench calls ``record(...)`` for each figure that has a target; the line is
printed at once and, when ``BENCH_SUMMARY`` names a file (bench/run.py sets it),
appended there as JSON so the runner can print every bench's figures together.
"""

import json
import os


def record(bench: str, figure: str, value: float, target: str, ok: bool, unit: str = "") -> None:
    """Print and keep one measured figure: its value, its target and whether it met it."""
    shown = f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"
    print(f"[summary] {figure}: {shown} (target {target}) {'pass' if ok else 'MISS'}", flush=True)
    path = os.environ.get("BENCH_SUMMARY")
    if not path:
        return
    row = {"bench": bench, "figure": figure, "value": shown, "target": target, "ok": bool(ok)}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
