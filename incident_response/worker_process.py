"""A real Celery worker in its own process, for tests and benchmarks that need one."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class WorkerDidNotStart(RuntimeError):
    pass


def start_worker_process(
    *,
    env: dict,
    log_path: Path,
    name: str,
    loglevel: str = "info",
    timeout: float = 60.0,
    queues: str = "default,executor",
    concurrency: int = 4,
    pool: str = "threads",
) -> subprocess.Popen:
    """Start `celery worker` (both queues by default) and return once it answers a ping.

    The ping goes through this process's Celery app, so `env` must name the same broker.
    """
    from incident_response.celery import app

    log = open(log_path, "a")  # noqa: SIM115 - the worker writes to it for its whole life
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "incident_response", "worker",
         "-Q", queues, "-c", str(concurrency), "--pool", pool, "-l", loglevel,
         "-n", f"{name}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not app.control.ping(timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_worker_process(proc)
            raise WorkerDidNotStart(f"the Celery worker did not start; see {log_path}")
    return proc


def stop_worker_process(proc: subprocess.Popen | None) -> None:
    """Terminate the worker; kill it if it has not stopped within 15 s."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
