"""Fly.io Machines API: list an app's machines and restart them, one at a time.

target.url is the API base (https://api.machines.dev) with the app either in the
URL (…/v1/apps/<app>) or in target.options["app"]; the token is target.secret.
"""

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from executor.results import StepBlocked, StepError

from . import http

APP_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MACHINE_RE = re.compile(r"[a-z0-9]{6,32}")
LIST_MAX_BYTES = 1024 * 1024  # a machine list is JSON: read it whole, within reason


def api(target: Any) -> tuple[str, str]:
    """(API base without path, app name), both checked."""
    if target is None or getattr(target, "kind", "") != "fly":
        raise StepBlocked("this step needs a fly target")
    parts = urlsplit(http.target_url(target))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepBlocked(f"target {target.name} has no http(s) API URL")
    found = re.fullmatch(r"(.*?)/v1/apps/([^/]+)/?", parts.path)
    if found:
        prefix, app = found.group(1), found.group(2)
    else:
        prefix, app = parts.path.rstrip("/"), (target.options or {}).get("app", "")
    if not isinstance(app, str) or not APP_RE.fullmatch(app):
        raise StepBlocked(f"target {target.name} does not name a valid Fly app")
    base = urlunsplit((parts.scheme, parts.netloc, prefix, "", ""))
    return base, app


def _headers(target: Any) -> dict:
    if not target.secret:
        raise StepBlocked(f"Fly target {target.name} has no API token")
    return {"Authorization": f"Bearer {target.secret}"}


def _error(what: str, status: int, body: str) -> StepError:
    try:
        detail = json.loads(body).get("error") or body
    except (ValueError, AttributeError):
        detail = body
    return StepError(f"{what} answered {status}: {' '.join(str(detail).split())[:150]}")


def list_machines(target: Any, *, deadline: float) -> list[dict]:
    base, app = api(target)
    url = f"{base}/v1/apps/{quote(app)}/machines"
    got = http.get(
        url,
        deadline=deadline,
        headers=_headers(target),
        what=f"Fly target {target.name}",
        max_bytes=LIST_MAX_BYTES,
    )
    if got["status"] != 200:
        raise _error(f"Fly target {target.name}: listing machines", got["status"], got["body"])
    try:
        machines = json.loads(got["body"])
    except ValueError as exc:
        raise StepError(f"Fly target {target.name}: the machine list is not JSON") from exc
    if not isinstance(machines, list):
        raise StepError(f"Fly target {target.name}: the machine list is not a list")
    return [
        {
            "id": m.get("id"),
            "name": m.get("name"),
            "state": m.get("state"),
            "region": m.get("region"),
        }
        for m in machines
        if isinstance(m, dict) and isinstance(m.get("id"), str)
    ]


def restart(target: Any, machine_id: str, *, deadline: float) -> None:
    if not isinstance(machine_id, str) or not MACHINE_RE.fullmatch(machine_id):
        raise StepBlocked(f"refused machine id {repr(machine_id)[:40]}")
    base, app = api(target)
    url = f"{base}/v1/apps/{quote(app)}/machines/{machine_id}/restart"
    status, _, body = http.post_json(
        url, {}, deadline=deadline, headers=_headers(target), what=f"Fly target {target.name}"
    )
    if not 200 <= status < 300:
        raise _error(f"Fly target {target.name}: restarting {machine_id}", status, body)
