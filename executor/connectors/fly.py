"""Fly.io Machines API: list an app's machines; restart, start, stop or re-image them.

target.url is the API base (https://api.machines.dev) with the app either in the
URL (…/v1/apps/<app>) or in target.options["app"], or simply the app name (then
the public API, or options["api_url"]); the token is target.secret, read from
the variable named by target.secret_env.

Every request carries `Authorization: Bearer <token>` and never follows a
redirect (the token must not travel to another host). Answers, as documented at
fly.io/docs/machines/api/working-with-machines-api/:
- 2xx: success;
- 401/403: the token is missing, invalid or lacks access: a StepError naming the
  variable that holds it (never its value);
- 404: no such app or machine;
- 429: rate limited (per action, per machine): waited out when `Retry-After`
  fits before the deadline, at most http.MAX_ATTEMPTS times, else a StepError;
- 5xx: a Fly.io server error: a StepError, never retried (the request may have
  been applied; the caller stops rather than guess).
App names, machine ids and image references are checked against strict
patterns before they go into a path or a body.
"""

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from executor.results import StepBlocked, StepError, StepTimeout

from . import http

APP_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MACHINE_RE = re.compile(r"[a-z0-9]{6,32}")
PROCESS_GROUP_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# An image reference with an explicit registry host: host[:port]/repo[/repo…](:tag|@sha256:…|both).
_HOST = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+(?::[0-9]{1,5})?"
_REPO = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*){0,4}"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
# Plain syntax (no named groups) so the same pattern can go into a JSON Schema.
IMAGE_PATTERN = rf"^({_HOST})/({_REPO})(?::({_TAG})(?:@({_DIGEST}))?|@({_DIGEST}))$(?!\n)"
IMAGE_RE = re.compile(IMAGE_PATTERN)

DEFAULT_API = (
    "https://api.machines.dev"  # the public endpoint; inside Fly: http://_api.internal:4280
)
LIST_MAX_BYTES = 1024 * 1024  # a machine list is JSON: read it whole, within reason
BODY_MAX_BYTES = 256 * 1024


def api(target: Any) -> tuple[str, str]:
    """(API base without path, app name), both checked.

    target.url is either an API URL (with the app in its path or in
    options["app"]) or a bare app name, as the catalog's `base` allows; a bare
    name talks to options["api_url"] or the public API, DEFAULT_API.
    """
    if target is None or getattr(target, "kind", "") != "fly":
        raise StepBlocked("this step needs a fly target")
    url = http.target_url(target)
    options = target.options or {}
    if "://" not in url:
        if not APP_RE.fullmatch(url):
            raise StepBlocked(f"target {target.name} does not name a valid Fly app")
        options = {**options, "app": options.get("app") or url}
        url = options.get("api_url") or DEFAULT_API
        if not isinstance(url, str):
            raise StepBlocked(f"target {target.name} has no http(s) API URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepBlocked(f"target {target.name} has no http(s) API URL")
    if parts.username or parts.password:
        # The token goes in a Bearer header from the secret variable, never in the URL,
        # where plans and results would show it.
        raise StepBlocked(
            f"target {target.name}: put the Fly token in its secret variable, not the URL"
        )
    found = re.fullmatch(r"(.*?)/v1/apps/([^/]+)/?", parts.path)
    if found:
        prefix, app = found.group(1), found.group(2)
    else:
        prefix, app = parts.path.rstrip("/"), options.get("app", "")
    if not isinstance(app, str) or not APP_RE.fullmatch(app):
        raise StepBlocked(f"target {target.name} does not name a valid Fly app")
    base = urlunsplit((parts.scheme, parts.netloc, prefix, "", ""))
    return base, app


def parse_image(ref: object) -> dict | None:
    """{registry, repository, tag, digest} of a strict image reference, or None."""
    if not isinstance(ref, str) or len(ref) > 400:
        return None
    m = IMAGE_RE.fullmatch(ref)
    if not m:
        return None
    registry, repository, tag, digest, only_digest = m.groups()
    return {
        "registry": registry,
        "repository": repository,
        "tag": tag or "",
        "digest": digest or only_digest or "",
    }


def check_machine_id(machine_id: object) -> str:
    if not isinstance(machine_id, str) or not MACHINE_RE.fullmatch(machine_id):
        raise StepBlocked(f"refused machine id {repr(machine_id)[:40]}")
    return machine_id


def _token(target: Any) -> str:
    if not target.secret:
        where = f" (set {target.secret_env})" if target.secret_env else ""
        raise StepBlocked(f"Fly target {target.name} has no API token{where}")
    return target.secret


def _detail(body: str) -> str:
    try:
        detail = json.loads(body).get("error") or body
    except (ValueError, AttributeError):
        detail = body
    return " ".join(str(detail).split())[:150]


def _unreachable(exc: httpx.HTTPError, what: str) -> StepError:
    if isinstance(exc, httpx.TimeoutException):
        return StepTimeout(f"{what}: no answer before the deadline")
    return StepError(f"{what}: cannot reach the Machines API: {http.reason(exc)[:200]}")


def _send(
    target: Any,
    method: str,
    path: str,
    *,
    deadline: float,
    what: str,
    payload: dict | None = None,
    max_bytes: int = BODY_MAX_BYTES,
) -> str:
    """One call to `path` under /v1/apps/{app}; the body text of a 2xx answer, else
    StepError/StepTimeout/StepBlocked."""
    base, app = api(target)
    headers = {"Authorization": f"Bearer {_token(target)}", "Accept": "application/json"}
    content = None
    if payload is not None:
        headers["Content-Type"] = "application/json"
        content = json.dumps(payload).encode()
    label = f"Fly target {target.name}: {what}"
    answer, _ = http.request_retrying(
        method,
        f"{base}/v1/apps/{app}{path}",
        deadline=deadline,
        what=label,
        limited_by="the Fly Machines API",
        headers=headers,
        content=content,
        max_bytes=max_bytes,
        errors=_unreachable,
    )
    status, text = answer.status, answer.body.decode("utf-8", "replace")
    if 200 <= status < 300:
        return text
    if status in (401, 403):
        raise StepError(
            f"{label}: the Machines API refused the token ({status}); check the API "
            f"token in {target.secret_env or 'the target secret variable'}"
        )
    # An error body should never echo the token; if it does, target.scrub takes it out.
    if status >= 500:
        raise StepError(
            f"{label}: Fly.io server error {status}: {target.scrub(_detail(text))}; "
            "stopped here, nothing further was sent"
        )
    raise StepError(f"{label}: answered {status}: {target.scrub(_detail(text))}")


def _json(text: str, target: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StepError(f"Fly target {target.name}: {what} is not JSON") from exc


_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


def _when(value: object) -> str:
    """An RFC 3339 time as the API gives it (created_at, updated_at), else ""."""
    return value if isinstance(value, str) and _TIME_RE.fullmatch(value) else ""


def _summary(m: dict) -> dict:
    config = m.get("config") if isinstance(m.get("config"), dict) else {}
    metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    return {
        "created_at": _when(m.get("created_at")),
        "updated_at": _when(m.get("updated_at")),
        "id": m.get("id"),
        "name": m.get("name"),
        "state": m.get("state"),
        "region": m.get("region"),
        "process_group": metadata.get("fly_process_group") or "",
        "image": config.get("image") if isinstance(config.get("image"), str) else "",
        "instance_id": m.get("instance_id") if isinstance(m.get("instance_id"), str) else "",
    }


def list_machines(target: Any, *, deadline: float) -> list[dict]:
    """GET /v1/apps/{app}/machines, summarised: id, name, state, region, process group, image."""
    text = _send(
        target,
        "GET",
        "/machines",
        deadline=deadline,
        what="listing machines",
        max_bytes=LIST_MAX_BYTES,
    )
    machines = _json(text, target, "the machine list")
    if not isinstance(machines, list):
        raise StepError(f"Fly target {target.name}: the machine list is not a list")
    return [_summary(m) for m in machines if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _parsed(when: str) -> datetime | None:
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    except ValueError:
        return None


def deployed_images(target: Any, *, deadline: float) -> list[dict]:
    """What the app runs, one entry per image reference: when its first machine was
    updated to it (`started_at`) and its last (`finished_at`), how many machines run it,
    and the image the other machines still run (`previous`, "" when all run this one).
    Newest first. Image references that do not parse as one are left out."""
    groups: dict[str, list[datetime]] = {}
    for m in list_machines(target, deadline=deadline):
        when = _parsed(m["updated_at"]) or _parsed(m["created_at"])
        if when is None or parse_image(m["image"]) is None:
            continue
        groups.setdefault(m["image"], []).append(when)
    ordered = sorted(groups.items(), key=lambda item: min(item[1]), reverse=True)
    out = []
    for i, (image, times) in enumerate(ordered):
        older = ordered[i + 1][0] if i + 1 < len(ordered) else ""
        out.append(
            {
                "app": api(target)[1],
                "image": image,
                "started_at": min(times),
                "finished_at": max(times),
                "machines": len(times),
                "previous": older,
            }
        )
    return out


def get_machine(target: Any, machine_id: str, *, deadline: float) -> dict:
    """GET /v1/apps/{app}/machines/{id}: the whole machine, config included."""
    check_machine_id(machine_id)
    text = _send(
        target,
        "GET",
        f"/machines/{machine_id}",
        deadline=deadline,
        what=f"reading machine {machine_id}",
        max_bytes=LIST_MAX_BYTES,
    )
    machine = _json(text, target, f"machine {machine_id}")
    if not isinstance(machine, dict) or not isinstance(machine.get("config"), dict):
        raise StepError(f"Fly target {target.name}: machine {machine_id} came without a config")
    return machine


def _lifecycle(target: Any, machine_id: str, verb: str, what: str, *, deadline: float) -> None:
    check_machine_id(machine_id)
    # Start, stop and restart take no body (stop's signal and timeout are optional).
    _send(
        target,
        "POST",
        f"/machines/{machine_id}/{verb}",
        deadline=deadline,
        what=f"{what} {machine_id}",
    )


def restart(target: Any, machine_id: str, *, deadline: float) -> None:
    _lifecycle(target, machine_id, "restart", "restarting", deadline=deadline)


def start(target: Any, machine_id: str, *, deadline: float) -> None:
    _lifecycle(target, machine_id, "start", "starting", deadline=deadline)


def stop(target: Any, machine_id: str, *, deadline: float) -> None:
    _lifecycle(target, machine_id, "stop", "stopping", deadline=deadline)


def update_image(target: Any, machine_id: str, image: str, *, deadline: float) -> dict:
    """Re-image one machine: read its whole config, replace config.image, post it back.

    The update names the machine's current instance_id as `current_version`, so
    it fails rather than overwrite a change made since the read. A stopped
    machine stays stopped (`skip_launch`). Returns {"from": old, "to": image}.
    """
    if parse_image(image) is None:
        raise StepBlocked(f"refused image reference {repr(image)[:80]}")
    machine = get_machine(target, machine_id, deadline=deadline)
    config = dict(machine["config"])
    old = config.get("image", "")
    config["image"] = image
    body: dict[str, Any] = {"config": config}
    if isinstance(machine.get("instance_id"), str) and machine["instance_id"]:
        body["current_version"] = machine["instance_id"]
    if machine.get("state") != "started":
        body["skip_launch"] = True
    _send(
        target,
        "POST",
        f"/machines/{machine_id}",
        deadline=deadline,
        what=f"updating {machine_id}",
        payload=body,
    )
    return {"from": old, "to": image}
