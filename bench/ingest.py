"""Alert ingest throughput against gunicorn on PostgreSQL, printed as ratios to a plain
single-row INSERT+COMMIT loop into the same PostgreSQL, all measured in one run.

    uv run python bench/ingest.py [--single 1000] [--groups 200] [--workers 4] [--clients 8]
                                  [--eager] [--redis redis://127.0.0.1:6379/12]

Creates and drops the database ir_bench_ingest. When Redis answers (and --eager is not
given), it runs the real configuration: gunicorn and a real Celery worker process on a
Redis database of the bench's own (flushed at start and end). The request then only stores
the alerts and their outbox row; so besides the accepted rate and the HTTP latency, each
phase reports when every accepted alert had been processed (outbox rows in = processed,
polled over one connection), and the rate that gives. Without Redis, Celery runs eagerly:
each request also does the processing (grouping, incident, timeline) inline.

Two baselines are measured in rounds around every phase: the serial one (one client,
INSERT + COMMIT per row), which the targets are ratios of, and a concurrent one (as many
connections as the app gets clients, each INSERT + COMMIT), printed beside it. The storm
phase also counts the runbook generations it asked for: one per incident at once, then at
most one refresh per debounce window (INGEST_RUNBOOK_DEBOUNCE_SECONDS, set by --debounce).
The single and group phases print the CPU they cost per alert, in the web processes, the
worker and this database's PostgreSQL backends: a figure the disk's commit latency (which
sets the serial baseline on a shared machine) does not move.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from scratch_db import drop_database, recreate_database
from summary import record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # incident_response.worker_process

WORKER_LOG = ROOT / "var" / "bench-worker.log"
DB = "ir_bench_ingest"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REDIS = ""  # set by main() when the real configuration runs
DEBOUNCE = 30  # set by main(): the runbook refresh window the server and worker use


def env() -> dict:
    e = dict(os.environ)
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "ANTHROPIC_API_KEY"):
        e.pop(name, None)
    e.update(DATABASE_URL=DB_URL, HOOK_TOKEN=TOKEN, LOG_LEVEL="WARNING", CONN_MAX_AGE="60")
    # New incidents ask for their runbook at once; alerts joining them later refresh it
    # once per window, which settle waits for before the next phase is timed.
    e["INGEST_RUNBOOK_DEBOUNCE_SECONDS"] = str(DEBOUNCE)
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
    """A real Celery worker process, started as conftest.celery_worker_process starts one."""
    from incident_response.worker_process import start_worker_process

    # The helper pings the worker through this process's Celery app: same settings, same broker.
    bench_env = env()
    os.environ.clear()
    os.environ.update(bench_env)
    WORKER_LOG.parent.mkdir(exist_ok=True)
    WORKER_LOG.write_text("")
    return start_worker_process(
        env=bench_env,
        log_path=WORKER_LOG,
        name=f"bench-{os.getpid()}",
        loglevel="warning",
        queues="default",
        concurrency=concurrency,
        pool="prefork",
    )


def connect(**kwargs) -> psycopg.Connection:
    return psycopg.connect(DB_URL.replace("postgres://", "postgresql://"), **kwargs)


def pending_outbox(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) FROM incidents_ingestoutbox WHERE processed_at IS NULL"
    ).fetchone()[0]


def drain(started: float, timeout: float = 600) -> float | None:
    """Seconds from `started` until every accepted outbox row is processed (None: never).

    Polled over one connection: a connection per poll would cost the server a backend
    start each time, CPU the phase being measured needs.
    """
    deadline = time.monotonic() + timeout
    with connect(autocommit=True) as conn:
        while pending_outbox(conn):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
    return time.perf_counter() - started


def settle(timeout: float = 180) -> None:
    """Wait until the worker has nothing left to do: no outbox row, runbook or execution
    pending, so that a baseline round or a phase does not share the CPU with leftovers."""
    query = """
        SELECT (SELECT count(*) FROM incidents_ingestoutbox WHERE processed_at IS NULL)
             + (SELECT count(*) FROM incidents_alertgroup g JOIN incidents_incident i
                  ON i.id = g.incident_id
                WHERE (g.runbook_requested_at IS NULL OR g.refresh_wanted_at IS NOT NULL)
                  AND i.status <> 'resolved')
             + (SELECT count(*) FROM runbooks_runbook WHERE status IN ('queued', 'generating'))
             + (SELECT count(*) FROM executor_execution WHERE status = 'running')
    """
    import redis

    queue = redis.Redis.from_url(REDIS) if REDIS else None
    deadline = time.monotonic() + timeout
    with connect(autocommit=True) as c:
        # Messages still queued (coalesced dispatches finding nothing left) count too.
        while c.execute(query).fetchone()[0] or (queue is not None and queue.llen("default")):
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not settle; see var/bench-worker.log")
            time.sleep(0.1)


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; [] once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_seconds(pids: set[int]) -> dict[int, float]:
    """CPU seconds so far of each live process (utime + stime, all its threads)."""
    seconds = {}
    for pid in pids:
        fields = _stat(pid)
        if fields:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return seconds


def _tree(root: int) -> set[int]:
    """root and its children (gunicorn's and Celery's workers)."""
    pids = {root}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == root:
                pids.add(int(entry.name))
    return pids


def cpu_snapshot(
    server: subprocess.Popen, worker: subprocess.Popen | None
) -> dict[str, dict[int, float]]:
    """CPU seconds so far, per process, of the web processes, the worker's and this
    database's PostgreSQL backends (other databases on the server are not counted)."""
    with connect(autocommit=True) as conn:
        backends = {
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [DB],
            )
        }
    return {
        "web": _cpu_seconds(_tree(server.pid)),
        "worker": _cpu_seconds(_tree(worker.pid)) if worker else {},
        "PostgreSQL": _cpu_seconds(backends),
    }


def cpu_per_alert(before: dict, after: dict, alerts: int) -> str:
    """Each part's CPU between the snapshots, per alert (a process that started in between
    counts from zero; one that ended in between is lost, and none should)."""
    parts = {
        name: sum(t - before[name].get(pid, 0.0) for pid, t in after[name].items()) * 1000 / alerts
        for name in before
    }
    shown = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
    return f"CPU per alert (core-ms): {shown}; total {sum(parts.values()):.2f}"


def setup_db() -> None:
    recreate_database(DB_URL)
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


def baseline_inserts(n: int, clients: int = 1) -> float:
    """Rows/s of single-row INSERT + COMMIT, n rows in all from `clients` connections at
    once (each in its own thread: psycopg waits for the server without the GIL)."""
    conns = [connect() for _ in range(clients)]
    conns[0].execute(
        "CREATE TABLE IF NOT EXISTS bench_plain (id bigserial primary key, k text, v jsonb)"
    )
    conns[0].commit()
    barrier = threading.Barrier(clients + 1)

    def insert(conn: psycopg.Connection, rows: range) -> None:
        barrier.wait()
        for i in rows:
            conn.execute("INSERT INTO bench_plain (k, v) VALUES (%s, %s)", [f"k{i}", '{"a": 1}'])
            conn.commit()

    share = n // clients
    threads = [
        threading.Thread(target=insert, args=(c, range(j * share, (j + 1) * share)))
        for j, c in enumerate(conns)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return share * clients / elapsed


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


def run(
    base: str, slug: str, bodies: list[dict], clients: int, *, probe: int = 0
) -> tuple[float, list[float], float]:
    """POST every body over `clients` keep-alive connections; (seconds, latencies, start).

    With `probe` > 0, send that many `GET /healthz` instead (an empty Django view: the
    ceiling any one request can reach on this server).

    A small HTTP/1.1 client on asyncio streams, so that the client's own CPU (this machine
    has two cores, shared with the server and the worker) stays small next to the server's.
    Every answer is read in full and must be a 202.
    """
    host, port = base.removeprefix("http://").split(":")
    requests = [
        (
            f"POST /hooks/{slug}/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data
        for data in (json.dumps(b).encode() for b in bodies)
    ]
    expected = 202
    if probe:
        requests = [f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()] * probe
        expected = 200
    latencies: list[float] = []

    async def connection(queue: asyncio.Queue) -> None:
        reader = writer = None
        while not queue.empty():
            request = queue.get_nowait()
            if writer is None:
                reader, writer = await asyncio.open_connection(host, int(port))
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = close = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = 1
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            if status != expected:
                raise SystemExit(f"{request[:40]!r} answered {status}: {body[:300]!r}")
            if close:  # a server without keep-alive: connect again
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def main() -> float:
        queue: asyncio.Queue = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)
        started = time.perf_counter()
        await asyncio.gather(*(connection(queue) for _ in range(clients)))
        return started

    started = asyncio.run(main())
    return time.perf_counter() - started, latencies, started


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def count_storm(service: str, source_slug: str, since_id: int) -> tuple[int, int]:
    """(incidents, runbook generations asked for) of the storm: the incidents its alerts
    are in, and every runbook version of those requested after `since_id`."""
    with connect() as conn:
        return conn.execute(
            """
            WITH hit AS (
                SELECT DISTINCT a.incident_id FROM incidents_alert a
                JOIN incidents_alertsource s ON s.id = a.source_id
                WHERE a.service = %s AND s.slug = %s AND a.incident_id IS NOT NULL)
            SELECT (SELECT count(*) FROM hit),
                   (SELECT count(*) FROM runbooks_runbook r
                    WHERE r.incident_id IN (SELECT incident_id FROM hit) AND r.id > %s)
            """,
            [service, source_slug, since_id],
        ).fetchone()


def last_runbook_id() -> int:
    with connect() as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM runbooks_runbook").fetchone()[0]


def main() -> None:
    from incident_response.worker_process import stop_worker_process

    global REDIS, DEBOUNCE
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=2000)
    ap.add_argument("--groups", type=int, default=200)
    # The web process shape fly.toml deploys: gthread workers keep connections alive.
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--baseline", type=int, default=1000, help="rows per baseline round")
    ap.add_argument(
        "--services", type=int, default=20, help="services the single posts spread over"
    )
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="the bench's own DB")
    ap.add_argument("--eager", action="store_true", help="no broker even if Redis answers")
    ap.add_argument("--worker-concurrency", type=int, default=2)
    # Production's window: a shorter one makes the worker refresh runbooks mid-phase.
    ap.add_argument("--debounce", type=int, default=30, help="runbook refresh window, seconds")
    args = ap.parse_args()
    DEBOUNCE = args.debounce

    REDIS = "" if args.eager or not redis_flush(args.redis) else args.redis
    setup_db()
    worker = start_worker(args.worker_concurrency) if REDIS else None
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "incident_response.wsgi",
            "-w", str(args.workers), "--threads", str(args.threads),
            "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    drained: dict[str, float | None] = {}
    cpu: dict[str, str] = {}  # per phase, until every alert is processed
    # The machine is shared and its speed drifts: a baseline round runs before and after
    # each phase, while the server and the worker idle, and each phase is compared with
    # the mean of the two rounds around it.
    plain: list[float] = []
    together: list[float] = []  # the concurrent baseline, in the same rounds

    def baseline_round() -> None:
        plain.append(baseline_inserts(args.baseline))
        together.append(baseline_inserts(args.baseline, args.clients))

    try:
        deadline = time.monotonic() + 120  # a loaded machine imports slowly
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
        run(base, "gen", [{"title": "warm", "service": services[0]}] * 50, args.clients)
        settle()

        baseline_round()
        run(base, "", [], args.clients, probe=200)  # warm
        e_elapsed, e_lat, _ = run(base, "", [], args.clients, probe=args.single)
        singles = [
            {"title": f"Single {i}", "service": services[i % len(services)], "dedup_key": f"s{i}"}
            for i in range(args.single)
        ]
        cpu_before = cpu_snapshot(server, worker)
        s_elapsed, s_lat, started = run(base, "gen", singles, args.clients)
        drained["single"] = drain(started)
        cpu["single"] = cpu_per_alert(cpu_before, cpu_snapshot(server, worker), args.single)
        settle()
        baseline_round()
        groups = [am_group(50, "bench-group", f"g{i % 10}") for i in range(args.groups)]
        cpu_before = cpu_snapshot(server, worker)
        g_elapsed, g_lat, started = run(base, "am", groups, args.clients)
        drained["group"] = drain(started)
        cpu["group"] = cpu_per_alert(cpu_before, cpu_snapshot(server, worker), 50 * args.groups)
        settle()
        baseline_round()
        storm = [am_group(50, "bench-storm", f"storm{i}") for i in range(200)]  # 10,000 alerts
        before_storm = last_runbook_id()
        st_elapsed, _, started = run(base, "am", storm, args.clients)
        drained["storm"] = drain(started)
        storm_drained = time.perf_counter() - started
        settle()
        storm_settled = time.perf_counter() - started
        storm_incidents, storm_generations = count_storm("bench-storm", "am", before_storm)
        baseline_round()
        with connect() as conn:
            left = pending_outbox(conn)
    finally:
        server.terminate()
        server.wait(20)
        stop_worker_process(worker)

    around = {
        "single": (plain[0] + plain[1]) / 2,
        "group": (plain[1] + plain[2]) / 2,
        "storm": (plain[2] + plain[3]) / 2,
    }
    around_together = {
        "single": (together[0] + together[1]) / 2,
        "group": (together[1] + together[2]) / 2,
        "storm": (together[2] + together[3]) / 2,
    }

    def processed(name: str, alerts: int, accepted_in: float) -> str:
        if not REDIS:
            return "processed inside the request (eager)"
        took = drained[name]
        if took is None:
            return "NOT all processed within the timeout"
        return (
            f"all processed {took:.2f} s after the first post ({took - accepted_in:+.2f} s after "
            f"the last answer): {alerts / took:,.0f} alerts/s = "
            f"{alerts / took / around[name]:.2f}x serial baseline, "
            f"{alerts / took / around_together[name]:.2f}x concurrent"
        )

    def processed_rate(name: str, alerts: int, accepted_in: float) -> float:
        """Alerts/s fully processed (eager: the request processes, so as accepted)."""
        took = drained[name] if REDIS else accepted_in
        return alerts / took if took else 0.0

    single_rate = args.single / s_elapsed
    empty_rate = args.single / e_elapsed
    group_rate = 50 * args.groups / g_elapsed
    mode = (
        f"Celery worker (prefork -c {args.worker_concurrency}) on {REDIS}"
        if REDIS
        else "eager Celery (no broker)"
    )
    print(
        f"gunicorn -w {args.workers} --threads {args.threads}, {args.clients} concurrent "
        f"keep-alive clients, PostgreSQL, {mode}; single posts spread over {args.services} "
        f"services; runbook refresh window {DEBOUNCE} s"
    )
    print(
        "baseline plain INSERT+COMMIT, rounds before/between/after the phases: serial (one "
        "client) "
        + ", ".join(f"{r:,.0f}" for r in plain)
        + f" rows/s; concurrent ({args.clients} connections) "
        + ", ".join(f"{r:,.0f}" for r in together)
        + " rows/s"
    )
    print(
        f"single-alert posts: {single_rate:,.0f} alerts/s accepted = "
        f"{single_rate / around['single']:.2f}x serial baseline (target >= 0.3x), "
        f"{single_rate / around_together['single']:.2f}x concurrent; "
        f"p50 {pct(s_lat, 0.5):.1f} ms, p99 {pct(s_lat, 0.99):.1f} ms"
    )
    print(f"  {processed('single', args.single, s_elapsed)}")
    print(f"  {cpu['single']}")
    print(
        f"  ceiling: an empty Django view (GET /healthz) on the same server and clients: "
        f"{empty_rate:,.0f} requests/s = {empty_rate / around['single']:.2f}x baseline; "
        f"single posts reach {single_rate / empty_rate:.0%} of it"
    )
    print(
        f"50-alert Alertmanager posts: {group_rate:,.0f} alerts/s accepted = "
        f"{group_rate / around['group']:.2f}x serial baseline (target >= 2.5x), "
        f"{group_rate / around_together['group']:.2f}x concurrent; "
        f"p50 {pct(g_lat, 0.5):.1f} ms, p99 {pct(g_lat, 0.99):.1f} ms"
    )
    print(f"  {processed('group', 50 * args.groups, g_elapsed)} (target >= 1.5x serial)")
    print(f"  {cpu['group']}")
    print(
        f"10,000-alert storm on one service: {storm_incidents} incident(s); accepted in "
        f"{st_elapsed:.2f} s; {processed('storm', 10_000, st_elapsed)}"
    )
    print(
        f"  runbook generations asked for in the storm: {storm_generations} for "
        f"{storm_incidents} incident(s) and 200 deliveries, counted {storm_settled:.1f} s after "
        f"the first post ({storm_settled - storm_drained:.1f} s after the last alert was "
        f"processed, once nothing was left to generate)"
    )
    if REDIS:
        print(f"outbox rows left unprocessed at the end: {left}")

    single_ratio = single_rate / around["single"]
    group_ratio = group_rate / around["group"]
    group_done = processed_rate("group", 50 * args.groups, g_elapsed) / around["group"]
    record("ingest", "single-alert posts accepted / serial INSERT+COMMIT", single_ratio,
           "≥ 0.3×", single_ratio >= 0.3, "×")  # fmt: skip
    record("ingest", "50-alert posts accepted / serial INSERT+COMMIT", group_ratio,
           "≥ 2.5×", group_ratio >= 2.5, "×")  # fmt: skip
    record("ingest", "50-alert posts processed / serial INSERT+COMMIT", group_done,
           "≥ 1.5×", group_done >= 1.5, "×")  # fmt: skip
    drop_database(DB_URL)
    if REDIS:
        redis_flush(REDIS)


if __name__ == "__main__":
    main()
