"""Run every bench in bench/ and print one summary table: figure, target, pass or miss.

    uv run python bench/run.py [--only pipeline,pages] [--quick]

Each bench runs in its own process (they build their own databases and
workers); its full output is shown as it runs, then the table gathers the
figures each one recorded through bench/summary.py.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Quick arguments keep a smoke run of the whole set short; the defaults measure.
BENCHES = {
    "pipeline": [],
    "pages": [],
    "ingest": [],
    "diagnosis": [],
}
QUICK = {
    "pipeline": ["--runs", "5"],
    "pages": ["--incidents", "5000", "--requests", "30"],
    "ingest": ["--single", "100", "--groups", "4"],
    "diagnosis": [],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    names = [n for n in (args.only.split(",") if args.only else BENCHES) if n]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown bench: {', '.join(unknown)} (known: {', '.join(BENCHES)})")

    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as tmp:
        summary_path = tmp.name
    failed = []
    for name in names:
        print(f"\n== bench/{name}.py", flush=True)
        extra = QUICK[name] if args.quick else BENCHES[name]
        env = dict(os.environ, BENCH_SUMMARY=summary_path)
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *extra], env=env)
        if rc:
            failed.append(f"{name} (exit {rc})")

    rows = [json.loads(line) for line in Path(summary_path).read_text().splitlines() if line]
    os.unlink(summary_path)
    print("\n== summary")
    headers = ("bench", "figure", "value", "target", "result")
    table = [
        (r["bench"], r["figure"], r["value"], r["target"], "pass" if r["ok"] else "MISS")
        for r in rows
    ]
    widths = [
        max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    missed = sum(1 for r in rows if not r["ok"])
    print(f"\n{len(rows)} figures, {len(rows) - missed} pass, {missed} miss")
    if failed:
        print("benches that failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
