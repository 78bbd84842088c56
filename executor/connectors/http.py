"""HTTP connector (httpx): health GETs, and `request`, the one send path the Prometheus,
Loki, Slack and Fly connectors share, all bounded by the step's deadline.

`get` follows redirects only within the same origin (scheme, host, port), at most
a few hops; a redirect elsewhere is reported, not followed. `request` never
follows one; `request_retrying` also waits out 429s that fit in the deadline. Bodies are read in
chunks up to a cap, checking the deadline between chunks, so a server that
trickles bytes cannot hold the step. URLs with credentials never reach messages.
"""

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from executor.results import StepBlocked, StepError, StepTimeout, time_left
from executor.targets import redact_url

MAX_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_CONNECT_SECONDS = 5.0
MAX_ATTEMPTS = 3  # per request, counting the 429s waited out
USER_AGENT = "incident-executor/1"
# Same shape as the http.health_check schema: segments of unreserved characters.
PATH_RE = re.compile(r"(/[A-Za-z0-9._~\-]*)*")


def bearer(target: Any) -> dict[str, str]:
    """The Authorization header for a target whose secret variable holds a token, if any."""
    secret = getattr(target, "secret", "") or ""
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def timeout(deadline: float) -> httpx.Timeout:
    remaining = time_left(deadline)
    return httpx.Timeout(remaining, connect=min(remaining, MAX_CONNECT_SECONDS))


def check_path(path: object) -> str:
    """A sub-path that stays under the base URL: no `.`/`..` segments, no query."""
    if not isinstance(path, str) or len(path) > 200 or not PATH_RE.fullmatch(path):
        raise StepBlocked(f"refused path {repr(path)[:80]}")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise StepBlocked(f"refused path {path!r}: dot segments would leave the base URL")
    return path


def join(base: str, path: str) -> str:
    """`base` with `path` appended to its path (query kept), e.g. /healthz + /db."""
    check_path(path)
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepBlocked("the target URL is not an http(s) URL")
    if not path:
        return base
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    port = p.port or {"http": 80, "https": 443}.get(p.scheme)
    return (p.scheme, (p.hostname or "").lower(), port)


def _read_bounded(response: httpx.Response, deadline: float, limit: int = MAX_BODY_BYTES) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) >= limit:
            break
        time_left(deadline)
    return bytes(body[:limit])


def _mapped(exc: httpx.HTTPError, what: str) -> StepError:
    """The StepTimeout/StepError for a transport error, without any URL in the message."""
    if isinstance(exc, httpx.TimeoutException):
        return StepTimeout(f"{what}: no answer before the deadline")
    if isinstance(exc, httpx.ConnectError):
        return StepError(f"cannot connect to {what}: {reason(exc)}")
    return StepError(f"{what}: {type(exc).__name__}: {reason(exc)}")


def reason(exc: Exception) -> str:
    # httpx messages carry the OS error ("[Errno 111] Connection refused"), not the URL;
    # strip anything URL-like anyway.
    return re.sub(r"\w+://\S+", "<url>", str(exc))[:300] or type(exc).__name__


_shared: tuple[int, httpx.Client] | None = None
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """The process's one client: building one costs a fresh SSL context (~20 ms of CPU).

    Keyed by pid, so a forked worker builds its own rather than sharing sockets.
    """
    global _shared
    pid = os.getpid()
    if _shared is None or _shared[0] != pid:
        with _shared_lock:
            if _shared is None or _shared[0] != pid:
                _shared = (pid, _new_client())
    return _shared[1]


def _new_client() -> httpx.Client:
    # No redirects (a token must not follow one to another host), no proxy/env settings,
    # and no cookie kept: one target's cookies must never reach another.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.Client(
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
        cookies=jar,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
    )


@contextmanager
def _client() -> Iterator[httpx.Client]:
    yield shared_client()


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes  # at most the max_bytes asked for
    encoding: str  # the charset the answer declared, else utf-8
    # The target's scrubber: an upstream that echoes the request (URL, headers) in its
    # answer must not hand our secrets to whatever keeps or shows the text.
    scrub: Callable[[str], str] = _unchanged

    @property
    def text(self) -> str:
        return self.scrub(self.body.decode(self.encoding, "replace"))


def request(
    method: str,
    url: str,
    *,
    deadline: float,
    what: str,
    headers: dict[str, str] | None = None,
    max_bytes: int = MAX_BODY_BYTES,
    errors: Callable[[httpx.HTTPError, str], StepError] = _mapped,
    scrub: Callable[[str], str] = _unchanged,
    **send: Any,
) -> Answer:
    """One request, redirects not followed, its body read up to `max_bytes`.

    `send` goes to httpx as is (json=, content=, data=, params=). Timeouts come
    from the deadline; transport errors become `errors(exc, what)`, scrubbed.
    `scrub` (the target's `ResolvedTarget.scrub`) is applied to the answer's text.
    """
    try:
        with (
            _client() as client,
            client.stream(
                method, url, headers=headers or {}, timeout=timeout(deadline), **send
            ) as response,
        ):
            body = _read_bounded(response, deadline, max_bytes)
            return Answer(
                response.status_code, response.headers, body, response.encoding or "utf-8", scrub
            )
    except httpx.HTTPError as exc:
        mapped = errors(exc, what)
        mapped.args = (scrub(str(mapped)),)
        raise mapped from exc


def _retry_after(value: str | None) -> float:
    """Seconds a 429's Retry-After asks for; 1 when absent or not a number (e.g. an HTTP date)."""
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def request_retrying(
    method: str,
    url: str,
    *,
    deadline: float,
    what: str,
    limited_by: str,
    **kwargs: Any,
) -> tuple[Answer, int]:
    """`request`, waiting out 429s whose Retry-After fits before the deadline; (answer, attempts).

    At most MAX_ATTEMPTS requests; a 429 that cannot be waited out is a StepError.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        answer = request(method, url, deadline=deadline, what=what, **kwargs)
        if answer.status != 429:
            return answer, attempt
        wait = _retry_after(answer.headers.get("retry-after"))
        left = deadline - time.monotonic()
        if attempt == MAX_ATTEMPTS or wait >= left:
            raise StepError(
                f"{what}: rate limited by {limited_by} (429, Retry-After {wait:g}s, "
                f"{max(left, 0):.1f}s left before the deadline)"
            )
        # The server asks us to wait this long, and the wait fits in the step's deadline.
        time.sleep(wait)
    raise AssertionError("unreachable")


def get(
    url: str,
    *,
    deadline: float,
    headers: dict | None = None,
    what: str = "",
    max_bytes: int = MAX_BODY_BYTES,
) -> dict:
    """GET with same-origin redirects; status, latency to the final headers, bounded body."""
    what = what or redact_url(url)
    started = time.monotonic()
    hops: list[dict] = []
    current = url
    try:
        with _client() as client:
            while True:
                with client.stream(
                    "GET", current, headers=headers or {}, timeout=timeout(deadline)
                ) as response:
                    latency_ms = round((time.monotonic() - started) * 1000, 1)
                    location = response.headers.get("location")
                    if response.is_redirect and location and len(hops) < MAX_REDIRECTS:
                        nxt = urljoin(current, location)
                        same = _origin(nxt) == _origin(url)
                        hops.append(
                            {
                                "status": response.status_code,
                                "to": redact_url(nxt),
                                "followed": same,
                            }
                        )
                        if same:
                            current = nxt
                            continue
                    body = _read_bounded(response, deadline, max_bytes)
                    return {
                        "status": response.status_code,
                        "latency_ms": latency_ms,
                        "body": body.decode(response.encoding or "utf-8", "replace"),
                        "body_bytes_read": len(body),
                        "truncated": len(body) >= max_bytes,
                        "content_type": response.headers.get("content-type", ""),
                        "url": redact_url(current),
                        "redirects": hops,
                    }
    except httpx.HTTPError as exc:
        raise _mapped(exc, what) from exc


def target_url(target: Any) -> str:
    url = getattr(target, "url", "") or ""
    if not url:
        raise StepBlocked(f"target {getattr(target, 'name', '?')} has no URL")
    return url


# --- JSON APIs (Prometheus, Loki) ---------------------------------------------------


def api_url(base: str, path: str) -> str:
    """`path` under the target's base URL (which may carry a prefix); no query, no fragment."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepBlocked("the target URL is not an http(s) URL")
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path, query="", fragment=""))


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def request_json(
    method: str,
    url: str,
    *,
    params: dict[str, Any],
    deadline: float,
    headers: dict[str, str] | None = None,
    what: str,
    max_bytes: int,
) -> tuple[int, Any, str]:
    """Send `params` form-encoded (POST body or GET query string); (status, JSON or None, text).

    Raises StepTimeout when the deadline passes, StepError when the target cannot
    be reached or the answer is larger than `max_bytes`.
    """
    time_left(deadline)  # a passed deadline is a timeout before anything else
    send = {"data": params} if method == "POST" else {"params": params}
    if headers and "Authorization" in headers:
        url = _without_userinfo(url)  # httpx would replace a bearer token with basic auth
    # One byte over the cap tells a whole answer from a cut one: a cut JSON is useless.
    answer = request(
        method,
        url,
        deadline=deadline,
        what=what,
        headers={"Accept": "application/json", **(headers or {})},
        max_bytes=max_bytes + 1,
        **send,
    )
    if len(answer.body) > max_bytes:
        raise StepError(f"{what}: answer larger than {max_bytes // 1024} KiB; narrow the query")
    text = answer.body.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    return answer.status, payload, text
