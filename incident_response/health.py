"""Liveness and readiness probes for Fly.io's checks."""

import logging
import time

from django.conf import settings
from django.core.files.storage import storages
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _probe(fn) -> dict:
    started = time.monotonic()
    try:
        fn()
    except Exception as exc:  # a probe reports, it never raises
        # The detail (hosts, user names) goes to the log; the unauthenticated answer names the kind.
        logger.warning("readiness probe %s failed: %s", fn.__name__, exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _database() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")


def _broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # eager mode: no broker to reach
    from incident_response.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _storage() -> None:
    storages["artifacts"].exists("readyz-probe")


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _probe(_database), "broker": _probe(_broker), "storage": _probe(_storage)}
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
