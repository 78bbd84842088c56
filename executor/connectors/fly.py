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
  fits before the deadline, at most MAX_ATTEMPTS times, else a StepError;
- 5xx: a Fly.io server error: a StepError, never retried (the request may have
  been applied; the caller stops rather than guess).
App names, machine ids and image references are checked against strict
patterns before they go into a path or a body.
"""

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from executor.results import StepBlocked, StepError, StepTimeout, time_left

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
MAX_ATTEMPTS = 3  # per request, counting the 429s waited out
MAX_CONNECT_SECONDS = 5.0


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


def _scrub(text: str, target: Any) -> str:
    # An error body should never echo the token, but if it does it goes no further.
    secret = target.secret
    return text.replace(secret, "***") if secret else text


def _detail(body: str) -> str:
    try:
        detail = json.loads(body).get("error") or body
    except (ValueError, AttributeError):
        detail = body
    return " ".join(str(detail).split())[:150]


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0  # an HTTP date or junk: wait the documented per-action second


def _timeout(deadline: float) -> httpx.Timeout:
    remaining = time_left(deadline)
    return httpx.Timeout(remaining, connect=min(remaining, MAX_CONNECT_SECONDS))


def _read(response: httpx.Response, deadline: float, limit: int) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) >= limit:
            break
        time_left(deadline)
    return bytes(body[:limit])


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
    """One API call; the body text of a 2xx answer, or StepError/StepTimeout/StepBlocked."""
    base, _ = api(target)
    headers = {
        "Authorization": f"Bearer {_token(target)}",
        "Accept": "application/json",
        "User-Agent": http.USER_AGENT,
    }
    content = None
    if payload is not None:
        headers["Content-Type"] = "application/json"
        content = json.dumps(payload).encode()
    label = f"Fly target {target.name}: {what}"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with (
                httpx.Client(follow_redirects=False, trust_env=False) as client,
                client.stream(
                    method,
                    base + path,
                    headers=headers,
                    content=content,
                    timeout=_timeout(deadline),
                ) as response,
            ):
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                text = _read(response, deadline, max_bytes).decode("utf-8", "replace")
        except httpx.TimeoutException as exc:
            raise StepTimeout(f"{label}: no answer before the deadline") from exc
        except httpx.HTTPError as exc:
            reason = re.sub(r"\w+://\S+", "<url>", str(exc))[:200] or type(exc).__name__
            raise StepError(f"{label}: cannot reach the Machines API: {reason}") from exc
        if 200 <= status < 300:
            return text
        if status == 429:
            wait = _retry_after(retry_after)
            left = deadline - time.monotonic()
            if attempt == MAX_ATTEMPTS or wait >= left:
                raise StepError(
                    f"{label}: rate limited by the Fly Machines API (429, Retry-After "
                    f"{wait:g}s, {max(left, 0):.1f}s left before the deadline)"
                )
            # The API asks us to wait this long; the wait fits in the step's deadline.
            time.sleep(wait)
            continue
        if status in (401, 403):
            raise StepError(
                f"{label}: the Machines API refused the token ({status}); check the API "
                f"token in {target.secret_env or 'the target secret variable'}"
            )
        if status >= 500:
            raise StepError(
                f"{label}: Fly.io server error {status}: {_scrub(_detail(text), target)}; "
                "stopped here, nothing further was sent"
            )
        raise StepError(f"{label}: answered {status}: {_scrub(_detail(text), target)}")
    raise AssertionError("unreachable")


def _json(text: str, target: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StepError(f"Fly target {target.name}: {what} is not JSON") from exc


def _summary(m: dict) -> dict:
    config = m.get("config") if isinstance(m.get("config"), dict) else {}
    metadata = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
    return {
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
    _, app = api(target)
    text = _send(
        target,
        "GET",
        f"/v1/apps/{app}/machines",
        deadline=deadline,
        what="listing machines",
        max_bytes=LIST_MAX_BYTES,
    )
    machines = _json(text, target, "the machine list")
    if not isinstance(machines, list):
        raise StepError(f"Fly target {target.name}: the machine list is not a list")
    return [_summary(m) for m in machines if isinstance(m, dict) and isinstance(m.get("id"), str)]


def get_machine(target: Any, machine_id: str, *, deadline: float) -> dict:
    """GET /v1/apps/{app}/machines/{id}: the whole machine, config included."""
    check_machine_id(machine_id)
    _, app = api(target)
    text = _send(
        target,
        "GET",
        f"/v1/apps/{app}/machines/{machine_id}",
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
    _, app = api(target)
    # Start, stop and restart take no body (stop's signal and timeout are optional).
    _send(
        target,
        "POST",
        f"/v1/apps/{app}/machines/{machine_id}/{verb}",
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
    _, app = api(target)
    _send(
        target,
        "POST",
        f"/v1/apps/{app}/machines/{machine_id}",
        deadline=deadline,
        what=f"updating {machine_id}",
        payload=body,
    )
    return {"from": old, "to": image}
