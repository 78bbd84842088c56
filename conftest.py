"""Shared test fixtures: real services when they are there, honest skips when not.

Under CI (CI=true) a service that is missing fails the run instead of skipping.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Per session (pid): concurrent sessions must not share the worker's files.
WORKER_ARTIFACTS = ROOT / "var" / f"test-worker-artifacts-{os.getpid()}"
WORKER_LOG = ROOT / "var" / f"test-worker-{os.getpid()}.log"
PG_URL = os.environ.get("PG_TARGET_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def need_service(name: str, why: str) -> None:
    """Skip (laptop) or fail (CI) a test whose service is not there."""
    message = f"{name} is not available: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services must be running)", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float = 30.0, what: str = "") -> object:
    """Poll a condition until it holds: synchronisation on state, not a fixed sleep."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL (the target side, not Django's own database)."""
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        need_service("PostgreSQL", f"{PG_URL}: {exc}")
    return PG_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        need_service("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server: the one CI started (AWS_ENDPOINT_URL_S3) or one of our own."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3", "")
    proc = None
    if not endpoint:
        port = free_port()
        moto = Path(sys.executable).with_name("moto_server")
        if not moto.exists():
            need_service("S3 server", "moto_server is not installed")
        log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
        )
        endpoint = f"http://127.0.0.1:{port}"
    host = urlsplit(endpoint)
    try:
        wait_until(
            lambda: port_open(host.hostname, host.port or 80),
            timeout=20,
            what="the S3 server to listen",
        )
    except AssertionError as exc:
        need_service("S3 server", str(exc))
    yield endpoint
    if proc:
        proc.terminate()
        proc.wait(10)


def s3_storage_settings(endpoint: str, bucket: str) -> dict:
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "access_key": "testing",
            "secret_key": "testing",
            "file_overwrite": False,
            "addressing_style": "path",
        },
    }


def s3_create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


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
    and on_commit fires.
    """
    return celery_worker_process


@contextmanager
def handler_server(handler_cls: type, **attrs) -> Iterator[tuple[object, str]]:
    """Serve a BaseHTTPRequestHandler class on a free loopback port: (server, base URL).

    `attrs` become attributes of the server, which handlers read as `self.server.<name>`.
    """
    import threading
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    httpd.daemon_threads = True
    for name, value in attrs.items():
        setattr(httpd, name, value)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


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
