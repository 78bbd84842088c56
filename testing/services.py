"""The real services tests use: where they are, whether they answer, honest skips when not.

Under CI (CI=true) a service that is missing fails the run instead of skipping.
"""

import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
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
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_redis_url() -> str:
    """A Redis URL on a closed port: a broker that is down."""
    return f"redis://127.0.0.1:{free_port()}/0"


def require_postgresql(url: str = PG_URL) -> str:
    """`url` if a PostgreSQL answers there; else skip (fail under CI)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        need_service("PostgreSQL", f"{url}: {exc}")
    return url


def require_redis(url: str = REDIS_URL) -> str:
    """`url` if a Redis answers there; else skip (fail under CI)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        need_service("Redis", f"{url}: {exc}")
    return url


# --- S3 ---------------------------------------------------------------------------------


def start_moto(log_dir: Path) -> tuple[str, subprocess.Popen]:
    """moto's S3 server on a free loopback port (`testing.s3_server`): (endpoint, process);
    skips if moto or gunicorn is not installed."""
    from importlib.util import find_spec

    from testing.s3_server import command

    missing = [name for name in ("moto", "gunicorn") if find_spec(name) is None]
    if missing:
        need_service("S3 server", f"{' and '.join(missing)} not installed")
    port = free_port()
    log = open(log_dir / "moto.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(command("127.0.0.1", port), stdout=log, stderr=log)
    return f"http://127.0.0.1:{port}", proc


def wait_for_s3(endpoint: str) -> None:
    """Wait for the S3 server at `endpoint` to listen; skip (fail under CI) if it never does."""
    from testing.waiting import wait_for_port

    host = urlsplit(endpoint)
    try:
        wait_for_port(host.hostname, host.port or 80, timeout=20, what="the S3 server to listen")
    except AssertionError as exc:
        need_service("S3 server", str(exc))


def s3_storage_settings(endpoint: str, bucket: str) -> dict:
    """A STORAGES entry for django-storages' S3 backend on a test server."""
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
    """Create `bucket` on the test S3 server unless it exists."""
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
