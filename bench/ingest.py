"""Alert ingest throughput against gunicorn on PostgreSQL, printed as ratios to a plain
single-row INSERT+COMMIT loop into the same PostgreSQL, all measured in one run.

    uv run python bench/ingest.py [--single 1000] [--groups 200] [--workers 4] [--clients 8]
                                  [--eager] [--redis redis://127.0.0.1:6379/12]

Creates and drops the database ir_bench_ingest. When Redis answers (and --eager is not
given), it runs the real configuration: gunicorn and a real Celery worker process on a
Redis database of the bench's own (flushed at start and end). The request then only stores
the alerts and their outbox row; so besides the accepted rate and the HTTP latency, each
phase reports when every accepted alert had been processed (outbox rows in = processed),
and the rate that gives. Without Redis, Celery runs eagerly: each request also does the
processing (grouping, incident, timeline) inline.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = "ir_bench_ingest"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REDIS = ""  # set by main() when the real configuration runs


def env() -> dict:
    e = dict(os.environ)
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "ANTHROPIC_API_KEY"):
        e.pop(name, None)
    e.update(DATABASE_URL=DB_URL, HOOK_TOKEN=TOKEN, LOG_LEVEL="WARNING", CONN_MAX_AGE="60")
    if REDIS:
        e["REDIS_URL"] = REDIS
    return e


def redis_flush(url: str) -> bool:
    """FLUSHDB on the bench's own Redis database; False when Redis does not answer."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
        client.close()
    except Exception:
        return False
    return True


def start_worker(concurrency: int) -> subprocess.Popen:
    """A real Celery worker process, as conftest.celery_worker_process starts one."""
    log = open(ROOT / "var" / "bench-worker.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "incident_response", "worker",
            "-Q", "default", "-c", str(concurrency), "--pool", "prefork", "-l", "warning",
            "-n", f"bench-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    code = (
        "import sys\n"
        "from incident_response.celery import app\n"
        "sys.exit(0 if app.control.ping(timeout=1) else 1)\n"
    )
    deadline = time.monotonic() + 60
    while subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env()).returncode:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the Celery worker did not start; see var/bench-worker.log")
        time.sleep(0.5)
    return proc


def pending_outbox() -> int:
    with psycopg.connect(DB_URL.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(
            "SELECT count(*) FROM incidents_ingestoutbox WHERE processed_at IS NULL"
        ).fetchone()[0]


def drain(started: float, timeout: float = 600) -> float | None:
    """Seconds from `started` until every accepted outbox row is processed (None: never)."""
    deadline = time.monotonic() + timeout
    while pending_outbox():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return time.perf_counter() - started


def setup_db() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    done = subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env())
    if done.returncode:
        # Ingest needs only these apps' tables; go on with them and say so.
        print("warning: full migrate failed; migrating incidents and runbooks only")
        for app in ("incidents", "runbooks"):
            subprocess.run(
                [sys.executable, "manage.py", "migrate", app, "-v", "0"],
                cwd=ROOT,
                env=env(),
                check=True,
            )
    code = (
        "from incidents.models import AlertSource as S\n"
        "S.objects.create(name='am', slug='am', kind='alertmanager', secret_env='HOOK_TOKEN')\n"
        "S.objects.create(name='gen', slug='gen', kind='generic', secret_env='HOOK_TOKEN')\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env(), check=True
    )


def baseline_inserts(n: int) -> float:
    """Rows/s of single-row INSERT + COMMIT from one Python client."""
    with psycopg.connect(DB_URL.replace("postgres://", "postgresql://")) as conn:
        conn.execute("CREATE TABLE bench_plain (id bigserial primary key, k text, v jsonb)")
        conn.commit()
        started = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO bench_plain (k, v) VALUES (%s, %s)", [f"k{i}", '{"a": 1}'])
            conn.commit()
        return n / (time.perf_counter() - started)


def am_group(n: int, service: str, group: str) -> dict:
    return {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "receiver": "bench",
        "groupLabels": {"alertname": "Bench"},
        "commonLabels": {"service": service},
        "commonAnnotations": {},
        "externalURL": "http://am.example:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Bench", "service": service, "i": uuid.uuid4().hex},
                "annotations": {"summary": f"Bench alert on {service}"},
                "startsAt": "2024-05-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
            }
            for _ in range(n)
        ],
    }


def run(base: str, slug: str, bodies: list[dict], clients: int) -> tuple[float, list[float], float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    encoded = [json.dumps(b).encode() for b in bodies]
    latencies: list[float] = []

    def one(client: httpx.Client, data: bytes) -> None:
        t = time.perf_counter()
        r = client.post(f"{base}/hooks/{slug}/", content=data, headers=headers)
        latencies.append(time.perf_counter() - t)
        assert r.status_code == 202, r.text

    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda d: one(client, d), encoded))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, started


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def count_incidents(service: str) -> int:
    with psycopg.connect(DB_URL.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(
            "SELECT count(*) FROM incidents_incident WHERE service = %s", [service]
        ).fetchone()[0]


def main() -> None:
    global REDIS
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--baseline", type=int, default=2000)
    ap.add_argument(
        "--services", type=int, default=20, help="services the single posts spread over"
    )
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="the bench's own DB")
    ap.add_argument("--eager", action="store_true", help="no broker even if Redis answers")
    ap.add_argument("--worker-concurrency", type=int, default=2)
    args = ap.parse_args()

    REDIS = "" if args.eager or not redis_flush(args.redis) else args.redis
    setup_db()
    worker = start_worker(args.worker_concurrency) if REDIS else None
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "incident_response.wsgi",
            "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    drained: dict[str, float | None] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)

        # Warm up: opens the incidents (and their one runbook each) outside the timings.
        services = [f"bench-single-{i}" for i in range(args.services)]
        run(base, "gen", [{"title": "warm", "service": svc} for svc in services], 1)
        run(base, "am", [am_group(1, "bench-group", "warm")], 1)
        drain(time.perf_counter())

        singles = [
            {"title": f"Single {i}", "service": services[i % len(services)], "dedup_key": f"s{i}"}
            for i in range(args.single)
        ]
        s_elapsed, s_lat, started = run(base, "gen", singles, args.clients)
        drained["single"] = drain(started)
        groups = [am_group(50, "bench-group", f"g{i % 10}") for i in range(args.groups)]
        g_elapsed, g_lat, started = run(base, "am", groups, args.clients)
        drained["group"] = drain(started)
        storm = [am_group(50, "bench-storm", f"storm{i}") for i in range(200)]  # 10,000 alerts
        st_elapsed, _, started = run(base, "am", storm, args.clients)
        drained["storm"] = drain(started)
        storm_incidents = count_incidents("bench-storm")
        left = pending_outbox()
    finally:
        server.terminate()
        server.wait(20)
        if worker is not None:
            worker.terminate()
            worker.wait(30)

    plain = baseline_inserts(args.baseline)

    def processed(name: str, alerts: int, accepted_in: float) -> str:
        if not REDIS:
            return "processed inside the request (eager)"
        took = drained[name]
        if took is None:
            return "NOT all processed within the timeout"
        return (
            f"all processed {took:.2f} s after the first post ({took - accepted_in:+.2f} s after "
            f"the last answer): {alerts / took:,.0f} alerts/s = {alerts / took / plain:.2f}x baseline"
        )

    single_rate = args.single / s_elapsed
    group_rate = 50 * args.groups / g_elapsed
    mode = (
        f"Celery worker (prefork -c {args.worker_concurrency}) on {REDIS}"
        if REDIS
        else "eager Celery (no broker)"
    )
    print(
        f"gunicorn -w {args.workers}, {args.clients} concurrent clients, PostgreSQL, {mode}; "
        f"single posts spread over {args.services} services"
    )
    print(f"baseline plain INSERT+COMMIT, one client: {plain:,.0f} rows/s")
    print(
        f"single-alert posts: {single_rate:,.0f} alerts/s accepted = {single_rate / plain:.2f}x "
        f"baseline (target >= 0.5x); p50 {pct(s_lat, 0.5):.1f} ms, p99 {pct(s_lat, 0.99):.1f} ms"
    )
    print(f"  {processed('single', args.single, s_elapsed)}")
    print(
        f"50-alert Alertmanager posts: {group_rate:,.0f} alerts/s accepted = "
        f"{group_rate / plain:.2f}x baseline (target >= 1x); p50 {pct(g_lat, 0.5):.1f} ms, "
        f"p99 {pct(g_lat, 0.99):.1f} ms"
    )
    print(f"  {processed('group', 50 * args.groups, g_elapsed)}")
    print(
        f"10,000-alert storm on one service: {storm_incidents} incident(s); accepted in "
        f"{st_elapsed:.2f} s; {processed('storm', 10_000, st_elapsed)}"
    )
    if REDIS:
        print(f"outbox rows left unprocessed at the end: {left}")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    if REDIS:
        redis_flush(REDIS)


if __name__ == "__main__":
    main()
