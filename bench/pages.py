"""Server time of the incident list, incident, metrics and report pages on a big database.

Fills PostgreSQL with 100,000 incidents and 1,000,000 timeline events (INSERT ...
SELECT generate_series, so it takes seconds, not minutes), then requests the pages
through Django's test client and prints the median and p95 server time of each,
beside a bare `SELECT 1` round trip measured in the same run, as ratios.

    uv run python bench/pages.py [--requests 60] [--incidents 100000] [--events 1000000]

BENCH_DATABASE_URL (never DATABASE_URL: it is dropped) defaults to postgres://postgres@127.0.0.1:5432/ir_bench; that database
is dropped and created by this script (and dropped again unless --keep).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from scratch_db import drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/ir_bench"
SERVICES = [
    "checkout",
    "payments",
    "search",
    "web",
    "sessions",
    "mailer",
    "orders",
    "inventory",
    "auth",
    "billing",
]


def say(message: str) -> None:
    print(message, flush=True)


def setup_django(url: str, conn_max_age: int) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["CONN_MAX_AGE"] = str(conn_max_age)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # static files: not built here
    import django
    from django.conf import settings

    django.setup()
    # The schema straight from the models (indexes included), whatever state the
    # migration files are in: the same tables the pages read in production.
    settings.MIGRATION_MODULES = {app.split(".")[-1]: None for app in settings.INSTALLED_APPS}
    settings.EXECUTOR_DEMO_TARGETS = False


def fill(n_incidents: int, n_events: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", run_syncdb=True, verbosity=0)
    say(f"  schema created ({time.perf_counter() - started:.1f}s)")

    User = get_user_model()
    users = [User(username=f"user{i}", is_active=True) for i in range(30)]
    User.objects.bulk_create(users)
    bench_user = User.objects.create_user("bench", password="bench-only")
    first_user = User.objects.order_by("pk").first().pk

    services = "ARRAY[" + ",".join(f"'{s}'" for s in SERVICES) + "]"
    with connection.cursor() as cur:
        t = time.perf_counter()
        # 2% open, the rest resolved; one every 5 minutes going back about a year.
        cur.execute(
            f"""
            INSERT INTO incidents_incident
              (title, description, severity, status, service, detected_at, acknowledged_at,
               resolved_at, created_by_id, commander_id, comms_lead_id, tech_lead_id, scribe_id,
               created_at, updated_at)
            SELECT
              'Incident ' || g || ': ' || ({services})[1 + g %% 10] || ' latency high',
              'Requests on ' || ({services})[1 + g %% 10] || ' are slow; seen by monitoring.',
              'SEV' || (1 + g %% 4),
              CASE WHEN g %% 50 = 0 THEN (ARRAY['investigating','identified','monitoring'])[1 + (g / 50) %% 3]
                   ELSE 'resolved' END,
              ({services})[1 + g %% 10],
              now() - (g * interval '5 minutes'),
              now() - (g * interval '5 minutes') + interval '3 minutes',
              CASE WHEN g %% 50 = 0 THEN NULL ELSE now() - (g * interval '5 minutes') + interval '47 minutes' END,
              NULL,
              CASE WHEN g %% 3 = 0 THEN NULL ELSE {first_user} + g %% 30 END,
              NULL, NULL, NULL,
              now() - (g * interval '5 minutes'),
              now() - (g * interval '5 minutes')
            FROM generate_series(1, %s) AS g
            """,
            [n_incidents],
        )
        say(f"  {n_incidents:,} incidents ({time.perf_counter() - t:.1f}s)")

        t = time.perf_counter()
        cur.execute(
            """
            INSERT INTO runbooks_runbook
              (incident_id, version, status, author, model_id, input_tokens, output_tokens,
               cache_read_tokens, cache_write_tokens, artifact, artifact_key, artifact_sha256,
               validation_errors, error, created_at, updated_at)
            SELECT id, 1, 'ready', 'offline', '', 0, 0, 0, 0, NULL, '', '', '[]', '',
                   detected_at, detected_at
            FROM incidents_incident
            """
        )
        say(f"  {n_incidents:,} runbook rows ({time.perf_counter() - t:.1f}s)")

        kinds = "ARRAY['note','status_changed','runbook_ready','checks_done','action_status']"
        batch = 250_000
        done = 0
        t = time.perf_counter()
        cur.execute("SELECT min(id), max(id) FROM incidents_incident")
        lo_id, hi_id = cur.fetchone()
        span = hi_id - lo_id + 1
        while done < n_events:
            count = min(batch, n_events - done)
            cur.execute(
                f"""
                INSERT INTO incidents_timelineevent
                  (incident_id, kind, actor_id, actor_label, message, payload, created_at)
                SELECT {lo_id} + g %% {span},
                       ({kinds})[1 + g %% 5],
                       NULL, 'system',
                       'Event ' || g || ': something happened on the incident',
                       '{{}}'::jsonb,
                       now() - ((g %% {span}) * interval '5 minutes') + (g / {span}) * interval '1 minute'
                FROM generate_series(%s, %s) AS g
                """,
                [done + 1, done + count],
            )
            done += count
            say(f"  {done:,} / {n_events:,} timeline events ({time.perf_counter() - t:.1f}s)")
        t = time.perf_counter()
        cur.execute("VACUUM ANALYZE")
        say(f"  analyzed ({time.perf_counter() - t:.1f}s)")
    targets = _busy_incidents(bench_user)
    return {"user": bench_user, "targets": targets}


def _busy_incidents(user) -> list[int]:
    """A few open incidents with a full runbook: 2 versions, 10 checks, 6 actions, updates."""
    from django.utils import timezone

    from executor.models import ActionRequest, CheckRun, Execution
    from incidents.models import Incident, StatusUpdate
    from runbooks.models import Runbook
    from runbooks.tests.factories import sample_document

    doc = sample_document(
        hypotheses=["A bad deploy", "The database is saturated", "A noisy neighbour"],
        checks=[
            {"id": f"check_{i}", "action": "http.health_check", "params": {}} for i in range(10)
        ],
    )
    ids = list(
        Incident.objects.exclude(status="resolved")
        .order_by("-detected_at")
        .values_list("pk", flat=True)[:20]
    )
    for pk in ids:
        runbook = Runbook.objects.get(incident_id=pk, version=1)
        Runbook.objects.filter(pk=runbook.pk).update(artifact=doc)
        Runbook.objects.create(
            incident_id=pk, version=2, status="ready", author="offline", artifact=doc
        )
        execution = Execution.objects.create(
            runbook=runbook, status="done", finished_at=timezone.now()
        )
        CheckRun.objects.bulk_create(
            CheckRun(
                execution=execution,
                check_id=f"check_{i}",
                action="http.health_check",
                outcome="ok",
                summary="200 in 12 ms",
                output="HTTP/1.1 200 OK",
                duration_ms=12,
                position=i,
            )
            for i in range(10)
        )
        ActionRequest.objects.bulk_create(
            ActionRequest(
                runbook=runbook,
                incident_id=pk,
                step_id=f"act_{i}",
                action="alert.notify",
                safety="reversible",
                runbook_marked_safe=i % 2 == 0,
                status=["proposed", "succeeded", "awaiting_approval"][i % 3],
                plan="Would record on the incident timeline: looking into it",
                result={"summary": "Recorded on the incident timeline"},
            )
            for i in range(6)
        )
        StatusUpdate.objects.bulk_create(
            StatusUpdate(incident_id=pk, audience="internal", body="Still investigating.")
            for _ in range(5)
        )
        Incident.objects.filter(pk=pk).update(commander=user, tech_lead=user)
    return ids


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure(requests: int, user, targets: list[int]) -> None:
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(user)

    def timed(fn, n: int) -> list[float]:
        for _ in range(3):
            fn(0)  # warm caches and the connection
        out = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            out.append((time.perf_counter() - t) * 1000)
        return out

    def select_one(_: int) -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def get(url: str, **extra):
        def call(i: int) -> None:
            target = url.format(pk=targets[i % len(targets)])
            response = client.get(target, **extra)
            assert response.status_code == 200, (target, response.status_code)

        return call

    detail = reverse("incidents:detail", args=[0]).replace("/0/", "/{pk}/")
    live = reverse("incidents:live", args=[0]).replace("/0/", "/{pk}/")
    pages = [
        ("list: open incidents", get("/")),
        ("list: all, page 1", get("/?status=all")),
        ("list: all, page 40", get("/?status=all&page=40")),
        ("list: search 'payments'", get("/?status=all&q=payments")),
        ("list: mine", get("/?mine=on&status=all")),
        ("incident page", get(detail)),
        ("incident page, diff v1..v2", get(detail + "?version=2&compare=1")),
        ("incident live poll (htmx)", get(live, HTTP_HX_REQUEST="true")),
        ("metrics: per week, by service", get("/metrics/")),
        ("metrics: per month, by severity", get("/metrics/?bucket=month&group=severity")),
        ("weekly stability report", get("/reports/weekly/")),
    ]
    base = timed(select_one, requests * 5)
    base_median = statistics.median(base)
    say("")
    say(f"SELECT 1 round trip: median {base_median:.3f} ms, p95 {percentile(base, 95):.3f} ms")
    say("")
    say(
        f"{'page':32} {'queries':>7} {'median ms':>10} {'p95 ms':>8} {'median/SELECT 1':>16} {'p95/SELECT 1':>13}"
    )
    for name, fn in pages:
        statements: list[str] = []

        def count(execute, sql, params, many, context, statements=statements):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            fn(0)
        times = timed(fn, requests)
        med, p95 = statistics.median(times), percentile(times, 95)
        say(
            f"{name:32} {len(statements):>7} {med:>10.2f} {p95:>8.2f} "
            f"{med / base_median:>15.0f}x {p95 / base_median:>12.0f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="requests per page")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--conn-max-age", type=int, default=60, help="persistent connections, s")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    # Never DATABASE_URL: this database is dropped and recreated.
    url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    if not urlsplit(url).path.lstrip("/").startswith("ir_bench"):
        raise SystemExit(
            "BENCH_DATABASE_URL must name a database starting with ir_bench: it is dropped"
        )

    say(f"database: {urlunsplit(urlsplit(url)._replace(netloc=urlsplit(url).hostname or ''))}")
    started = time.perf_counter()
    recreate_database(url)
    try:
        setup_django(url, args.conn_max_age)
        say("filling:")
        data = fill(args.incidents, args.events)
        say(f"filled in {time.perf_counter() - started:.1f}s")
        measure(args.requests, data["user"], data["targets"])
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(url)
    say(f"\ntotal {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
