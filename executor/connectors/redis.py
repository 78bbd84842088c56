"""Redis connector: SCAN + UNLINK by pattern, never KEYS or FLUSH.

Socket timeouts follow the step's deadline and the client does not retry, so a
stuck server cannot hold the step past it.
"""

import re
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from executor.results import StepBlocked, StepError, StepTimeout, time_left

SCAN_COUNT = 500
# A literal prefix first, then literal characters or `*`; no `?`, `[`, `\` or spaces.
KEY_PATTERN_RE = re.compile(r"[A-Za-z0-9:_.\-]+[A-Za-z0-9:_.\-*]*")
MAX_CONNECT_SECONDS = 5.0


def check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or len(pattern) > 200 or not KEY_PATTERN_RE.fullmatch(pattern):
        raise StepBlocked(f"refused key pattern {repr(pattern)[:80]}: needs a literal prefix")
    return pattern


def client(target: Any, deadline: float) -> redis.Redis:
    if target is None or getattr(target, "kind", "") != "redis":
        raise StepBlocked("this step needs a redis target")
    left = time_left(deadline)
    try:
        return redis.Redis.from_url(
            target.url,
            socket_connect_timeout=min(left, MAX_CONNECT_SECONDS),
            socket_timeout=left,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            client_name="incident-executor",
        )
    except ValueError as exc:
        raise StepBlocked(f"target {target.name} has no usable redis:// URL") from exc


def _errors(target: Any, exc: Exception) -> Exception:
    if isinstance(exc, redis.exceptions.TimeoutError):
        return StepTimeout(f"Redis target {target.name}: no answer before the deadline")
    message = str(exc).replace(getattr(target, "url", "") or "\0", "<url>")[:300]
    if isinstance(exc, redis.exceptions.ConnectionError):
        return StepError(f"cannot reach Redis target {target.name}: {message}")
    return StepError(f"Redis target {target.name}: {message}")


def count_matching(target: Any, pattern: str, *, max_keys: int, deadline: float) -> dict:
    """How many keys match, counted with SCAN only, up to max_keys or the deadline."""
    check_pattern(pattern)
    r = client(target, deadline)
    seen: set[bytes] = set()
    cursor, complete, stopped_by = 0, False, ""
    try:
        while True:
            time_left(deadline)
            cursor, keys = r.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            seen.update(keys)  # SCAN may return a key twice; a set counts it once
            if len(seen) >= max_keys:
                stopped_by = "max_keys"
                break
            if cursor == 0:
                complete = True
                break
    except StepTimeout:
        stopped_by = "deadline"
    except redis.exceptions.RedisError as exc:
        raise _errors(target, exc) from exc
    finally:
        r.close()
    return {
        "matching": min(len(seen), max_keys),
        "complete": complete,
        "stopped_by": stopped_by,
        "sample": sorted(k.decode("utf-8", "replace") for k in seen)[:10],
    }


def unlink_matching(target: Any, pattern: str, *, max_keys: int, deadline: float) -> dict:
    """UNLINK keys matching `pattern` in SCAN batches; stop at max_keys keys unlinked."""
    check_pattern(pattern)
    r = client(target, deadline)
    unlinked = 0
    batches = 0
    cursor, complete, limited = 0, False, False
    handled: set[bytes] = set()
    try:
        while True:
            time_left(deadline)
            cursor, keys = r.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            batch = [k for k in keys if k not in handled][: max_keys - unlinked]
            if batch:
                handled.update(batch)
                unlinked += int(r.unlink(*batch))
                batches += 1
            if cursor == 0:
                complete = True
            if unlinked >= max_keys:
                limited = not complete
                break
            if complete:
                break
    except StepTimeout as exc:
        # What was already unlinked is gone: say how much in the timeout itself.
        raise StepTimeout(
            f"Redis target {target.name}: deadline passed after unlinking {unlinked} keys"
        ) from exc
    except redis.exceptions.RedisError as exc:
        if isinstance(exc, redis.exceptions.TimeoutError):
            raise StepTimeout(
                f"Redis target {target.name}: no answer before the deadline "
                f"(after unlinking {unlinked} keys)"
            ) from exc
        raise _errors(target, exc) from exc
    finally:
        r.close()
    return {
        "unlinked": unlinked,
        "attempted": len(handled),
        "batches": batches,
        "complete": complete,
        "limited": limited,
    }
