"""Shared test fixtures: real services when they are there, honest skips when not.

Under CI (CI=true) a service that is missing fails the run instead of skipping.
"""

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from testing.browser import launch_chromium
from testing.servers import handler_server
from testing.services import (
    WORKER_ARTIFACTS,
    WORKER_LOG,
    require_postgresql,
    require_redis,
    s3_create_bucket,
    s3_storage_settings,
    start_moto,
    wait_for_s3,
)
from testing.waiting import wait_until, worker_idle


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL (the target side, not Django's own database)."""
    return require_postgresql()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server: the one CI started (AWS_ENDPOINT_URL_S3) or one of our own."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3", "")
    proc = None
    if not endpoint:
        endpoint, proc = start_moto(tmp_path_factory.mktemp("moto"))
    wait_for_s3(endpoint)
    yield endpoint
    if proc:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(autouse=True)
def _artifact_storage(settings, tmp_path, request) -> None:
    """Each test writes artifacts to its own place: a temp dir, or the S3 bucket in CI's S3 run."""
    if os.environ.get("BUCKET_NAME"):
        endpoint = request.getfixturevalue("s3_server")
        bucket = os.environ["BUCKET_NAME"]
        s3_create_bucket(endpoint, bucket)
        storages = dict(settings.STORAGES)
        storages["artifacts"] = s3_storage_settings(endpoint, bucket)
        settings.STORAGES = storages
    else:
        # With a worker process, share its directory: it writes what the test reads.
        location = tmp_path / "artifacts"
        if "pipeline" in request.fixturenames and not settings.CELERY_TASK_ALWAYS_EAGER:
            location = WORKER_ARTIFACTS
        storages = dict(settings.STORAGES)
        storages["artifacts"] = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        }
        settings.STORAGES = storages


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen | None]:
    """A real Celery worker process on the real broker, when a broker is configured.

    It talks to the test database, so tests that wait for it are transactional.
    """
    from django.conf import settings
    from django.db import connection

    if settings.CELERY_TASK_ALWAYS_EAGER:
        yield None
        return
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["EXECUTOR_DEMO_TARGETS"] = os.environ.get("EXECUTOR_DEMO_TARGETS", "true")
    env["ARTIFACTS_DIR"] = str(WORKER_ARTIFACTS)
    # Tests set the key per test in this process; the worker must never call the real API.
    env["ANTHROPIC_API_KEY"] = ""
    WORKER_LOG.parent.mkdir(exist_ok=True)
    WORKER_LOG.write_text("")
    from incident_response.worker_process import start_worker_process, stop_worker_process

    proc = start_worker_process(env=env, log_path=WORKER_LOG, name=f"test-{os.getpid()}")
    yield proc
    stop_worker_process(proc)


@pytest.fixture(autouse=True)
def _own_model_budget(settings) -> None:
    """Each test counts its Claude calls under its own Redis key: a Redis shared by the
    whole run must not carry one test's spent budget into the next."""
    settings.MODEL_BUDGET_KEY_PREFIX = f"irp-test:{uuid.uuid4().hex}:model-calls"


@pytest.fixture(autouse=True)
def _eager_unless_pipeline(request) -> Iterator[None]:
    """Service-level tests run queued work inline; `pipeline` tests use the real worker."""
    from incident_response.celery import app

    if "pipeline" in request.fixturenames:
        yield
        return
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def pipeline(request, celery_worker_process):
    """For tests that run the whole pipeline: eager inline, or through the worker.

    Such tests must be `django_db(transaction=True)` so that the worker sees their rows
    and on_commit fires. Afterwards it waits for the worker to finish what the test set
    off (a follow-up stage may still run): flushing the database under a running task
    can deadlock or leave rows for the next test.
    """
    yield celery_worker_process
    if celery_worker_process is not None:
        from incident_response.celery import app

        wait_until(
            lambda: worker_idle(app), timeout=120, what="the worker to finish the test's work"
        )


@pytest.fixture
def http_server():
    """Start local HTTP servers: `base_url = http_server(handle)`, handle(request_handler).

    `handle` gets the BaseHTTPRequestHandler and answers with send_response etc.
    Every request is kept in `http_server.requests` as (method, path, headers, body).
    """
    from contextlib import ExitStack
    from http.server import BaseHTTPRequestHandler

    stack = ExitStack()
    requests: list[tuple[str, str, dict, bytes]] = []

    def start(handle: Callable[[BaseHTTPRequestHandler], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                requests.append((self.command, self.path, dict(self.headers), body))
                self.body = body
                handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        _, base = stack.enter_context(handler_server(Handler))
        return base

    start.requests = requests
    with stack:
        yield start


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium through Playwright, one per test module."""
    yield from launch_chromium()
