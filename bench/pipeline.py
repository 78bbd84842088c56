"""Declaration → "checks done", offline and with Claude over a fake transport.

Each figure is printed as a ratio to an empty Celery task's round trip on the
same broker, measured in the same run, because absolute times drift on a
shared machine.

    uv run python bench/pipeline.py [--runs 20]

Uses PostgreSQL (database ir_bench_pipeline, created and dropped) and Redis with a real
worker process when they answer on 127.0.0.1; otherwise SQLite and eager tasks.
"""

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scratch_db import drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Not ir_bench: bench/pages.py drops that one, and may keep it (--keep).
DB_URL = "postgres://postgres@127.0.0.1:5432/ir_bench_pipeline"
REDIS = "redis://127.0.0.1:6379/14"
TEXT = "Checkout database connection pool exhausted: too many connections, requests time out"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class _Claude(BaseHTTPRequestHandler):
    """Answers POST /v1/messages at once with a recorded-shape Messages API response."""

    document: dict = {}

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": "claude-bench",
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "content": [{"type": "text", "text": json.dumps(self.document)}],
                "usage": {
                    "input_tokens": 2400,
                    "output_tokens": 600,
                    "cache_read_input_tokens": 2000,
                    "cache_creation_input_tokens": 0,
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the demo http target's /healthz
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def _serve() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Claude)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ir-bench-"))
    base = _serve()
    use_services = _reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379)
    env = {
        "DATA_DIR": str(tmp),
        "SITE_URL": base,
        "EXECUTOR_DEMO_TARGETS": "true",
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_MAX_RETRIES": "0",
        "LOG_LEVEL": "WARNING",
    }
    if use_services:
        recreate_database(DB_URL)
        env["DATABASE_URL"] = DB_URL
        env["REDIS_URL"] = REDIS
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from incident_response.celery import noop
    from incident_response.worker_process import start_worker_process, stop_worker_process
    from incidents.services import incident_declare
    from runbooks.generation.offline import plan_offline
    from web.selectors import pipeline_finished

    call_command("migrate", verbosity=0)
    from incidents.models import Incident

    _Claude.document = plan_offline(
        incident=Incident(title=TEXT, description=TEXT, service="checkout")
    )
    mode = "PostgreSQL + Redis + worker process" if use_services else "SQLite + eager tasks"
    print(f"bench/pipeline.py: {args.runs} runs each, {mode}")

    def round_trips() -> list[float]:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            noop.delay().get(timeout=30) if not settings.CELERY_TASK_ALWAYS_EAGER else noop.apply()
            times.append(time.perf_counter() - t0)
        return times

    def declarations(claude: bool) -> list[float]:
        settings.ANTHROPIC_API_KEY = "bench-key" if claude else ""
        times = []
        # Run 0 warms the worker up (first imports, first connections) and is not counted.
        for i in range(args.runs + 1):
            t0 = time.perf_counter()
            incident = incident_declare(description=f"{TEXT} ({i})", service="checkout")
            runbook, execution = pipeline_finished(incident=incident, timeout=120, max_poll=0.002)
            if i:
                times.append(time.perf_counter() - t0)
            want = "claude" if claude else "offline"
            if runbook is None or runbook.author != want or execution is None:
                raise SystemExit(
                    f"run {i}: pipeline did not finish as {want}: {runbook and runbook.error}"
                )
        return times

    results: dict[str, list[float]] = {}
    for label, claude in (("offline planner", False), ("claude, fake transport", True)):
        worker = None
        if use_services:
            worker_env = dict(os.environ, ANTHROPIC_API_KEY="bench-key" if claude else "")
            worker = start_worker_process(
                env=worker_env,
                log_path=tmp / "worker.log",
                name=f"bench-{time.monotonic_ns()}",
                loglevel="warning",
            )
        try:
            results.setdefault("noop", []).extend(round_trips())
            results[label] = declarations(claude)
        finally:
            stop_worker_process(worker)

    noop_median = statistics.median(results["noop"])
    print(f"{'measure':<28}{'median ms':>10}{'p95 ms':>10}{'× noop task':>13}")
    for label, times in results.items():
        times = sorted(times)
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        median = statistics.median(times)
        print(f"{label:<28}{median * 1000:>10.1f}{p95 * 1000:>10.1f}{median / noop_median:>13.1f}")
    print("(declaration → checks done, each as a multiple of an empty task's broker round trip)")
    if not use_services:
        print(
            "note: no PostgreSQL/Redis here, so tasks ran inline and the 'noop' baseline is an\n"
            "in-process call, not a broker round trip: read the milliseconds, not the ratios."
        )
    if use_services:
        from django.db import connections

        connections.close_all()
        drop_database(DB_URL)


if __name__ == "__main__":
    main()
