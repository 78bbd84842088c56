"""A worker killed while it generates runbooks: its leases run out, the lease sweep frees
their slots and queues them again, and a new worker finishes every incident's runbook
within a minute, with never more generations at once than the ceiling allows.

Real processes throughout: PostgreSQL, Redis, two Celery workers (the second with its
beat), and Claude as a local HTTP server speaking the Messages API that holds its answers
until the test lets them go, so the first worker is mid-generation when it dies.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

from incidents.models import Incident
from incidents.tests.ingest_helpers import make_source, post, secrets  # noqa: F401
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from runbooks.tests.factories import sample_document
from testing.broker import broker
from testing.fakes.anthropic import message
from testing.servers import handler_server
from testing.services import ROOT
from testing.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.usefixtures("secrets"),
]

CEILING = 4
INCIDENTS = 6


class HeldClaude:
    """The Messages API, answering a valid runbook once `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held = 0
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not fake.release.is_set():
                    with fake.lock:
                        fake.held += 1
                    fake.release.wait(120)
                answer = message(sample_document())
                with suppress(OSError):  # the worker that asked may have been killed
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)

            def log_message(self, *args) -> None:
                pass

        return Handler


class Sampler:
    """Counts generating (and queued + generating) versions every few ms, on its own connection."""

    def __init__(self) -> None:
        self.max_generating = 0
        self.max_active = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.02):
                counts = dict(
                    Runbook.objects.filter(
                        status__in=[RunbookStatus.QUEUED, RunbookStatus.GENERATING]
                    )
                    .values_list("status")
                    .annotate(n=Count("id"))
                )
                generating = counts.get(RunbookStatus.GENERATING, 0)
                self.max_generating = max(self.max_generating, generating)
                self.max_active = max(self.max_active, generating + counts.get("queued", 0))
                self.samples += 1
        finally:
            connection.close()

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def _worker(env: dict, log: Path, name: str, prefix: str, *extra: str) -> subprocess.Popen:
    # Every key this test's workers use carries `prefix`: the session's shared worker on the
    # same Redis database never sees these messages, nor these workers its messages.
    options = {"visibility_timeout": 3600, "global_keyprefix": prefix}
    code = (
        "import sys; from incident_response.celery import app; "
        f"app.conf.broker_transport_options = {options!r}; app.worker_main(sys.argv[1:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "worker", "-Q", "default", "-c", "8", "--pool", "threads",
         "-l", "info", "-n", f"{name}@%h", "--without-mingle", "--without-gossip", *extra],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(
        lambda: proc.poll() is not None or " ready." in log.read_text(errors="replace"),
        timeout=60,
        what=f"worker {name} to start",
    )
    assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
    return proc


@pytest.fixture
def lease_env(request, settings, tmp_path) -> Iterator[tuple[dict, str, str]]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (worker processes share the test database)")
    redis_url = request.getfixturevalue("redis_url")
    import redis as redis_lib

    prefix = f"lease-test-{os.getpid()}:"
    db = connection.settings_dict
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "TARGET_"))}
    env.update(
        DATABASE_URL=f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        ARTIFACTS_DIR=str(tmp_path / "artifacts"),
        SLACK_WEBHOOK_URL="",
        SLACK_BOT_TOKEN="",
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_MAX_RETRIES="0",
        ANTHROPIC_TIMEOUT="120",
        ANTHROPIC_CALLS_PER_MINUTE="0",
        INGEST_MAX_CONCURRENT_GENERATIONS=str(CEILING),
        INGEST_RUNBOOK_DEBOUNCE_SECONDS="0",
        INGEST_GENERATION_RETRY_SECONDS="1",
        INGEST_PIPELINE_SWEEP_SECONDS="1",
        RUNBOOK_LEASE_SECONDS="3",
        RUNBOOK_LEASE_SWEEP_SECONDS="0.5",
    )
    settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS = 0
    r = redis_lib.Redis.from_url(redis_url)
    try:
        with broker(redis_url, run_eager=False, transport_options={"global_keyprefix": prefix}):
            yield env, prefix, redis_url
    finally:
        for key in r.scan_iter(f"{prefix}*"):
            r.delete(key)
        r.close()


def test_generations_lost_with_a_killed_worker_are_finished_by_the_next(
    client, lease_env, tmp_path
):
    env, prefix, _ = lease_env
    claude = HeldClaude()
    workers: list[subprocess.Popen] = []
    with handler_server(claude.handler()) as (_, claude_url), Sampler() as sampler:
        env["ANTHROPIC_BASE_URL"] = claude_url
        try:
            workers.append(_worker(env, tmp_path / "first.log", "lease-first", prefix))
            make_source("generic", group_window_seconds=0)
            alerts = [
                {"title": f"Service {i} down", "service": f"svc-{i}", "dedup_key": f"k{i}"}
                for i in range(INCIDENTS)
            ]
            assert post(client, "generic", alerts).status_code == 202

            # The first worker is inside four generations (the ceiling); two incidents wait.
            wait_until(
                lambda: (
                    claude.held == CEILING
                    and Runbook.objects.filter(status=RunbookStatus.GENERATING).count() == CEILING
                ),
                timeout=60,
                what="four generations to be waiting on Claude",
            )
            assert Incident.objects.count() == INCIDENTS
            assert Runbook.objects.count() == CEILING

            workers[0].send_signal(signal.SIGKILL)
            assert workers[0].wait(15) == -signal.SIGKILL
            killed_at = time.monotonic()
            claude.release.set()

            beat = ["-B", "-s", str(tmp_path / "beat-schedule")]
            workers.append(_worker(env, tmp_path / "second.log", "lease-second", prefix, *beat))

            def all_ready() -> bool:
                ready = Runbook.objects.filter(status=RunbookStatus.READY)
                return ready.values("incident").distinct().count() == INCIDENTS

            wait_until(all_ready, timeout=60, what="every incident to have a ready runbook")
            recovered_in = time.monotonic() - killed_at
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(15)
            claude.release.set()

    log = (tmp_path / "second.log").read_text(errors="replace")
    assert recovered_in < 60, log[-3000:]
    assert sampler.samples > 10
    assert sampler.max_generating <= CEILING
    assert sampler.max_active <= CEILING
    # The four lost ones were claimed again, once each; the timeline says why.
    lost = Runbook.objects.filter(attempts=2)
    assert lost.count() == CEILING, list(Runbook.objects.values("incident", "attempts", "status"))
    for runbook in lost:
        queued = runbook.incident.timeline.filter(payload__attempt=2)
        assert "stopped renewing its lease" in queued.get().message
    assert Runbook.objects.exclude(status=RunbookStatus.READY).count() == 0
    assert Runbook.objects.filter(author="claude").count() == INCIDENTS
