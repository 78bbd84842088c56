"""The seed design's parameter names, mapped onto the registry's own with the same checks.

A runbook written to the seed contract names `range_minutes`, `query_id`,
`key_pattern`, a `lookback_minutes` for slow queries, a health `url`, a `service` to restart and a `channel`. Each is
translated here before the spec's schema sees it; nothing widens what a step may
touch: a URL must lie under an http target of the incident's own service, a
service resolves through the catalog to a target this incident may use, and a
channel must be a configured one.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from executor.results import StepBlocked
from executor.targets import service_target_names

Normalizer = Callable[[dict, Any], dict]


def renamed(old: str, new: str, convert: Callable[[Any], Any] = lambda v: v) -> Normalizer:
    """A normalizer taking `old` as `new`; both given and different is refused."""

    def normalize(params: dict, scope: Any) -> dict:
        if old not in params:
            return params
        out = {k: v for k, v in params.items() if k != old}
        value = convert(params[old])
        if new in out and out[new] != value:
            raise StepBlocked(f"{old} and {new} are both given and differ")
        out[new] = value
        return out

    return normalize


def dropped(name: str) -> Normalizer:
    """A normalizer ignoring `name`: a window pg_stat_activity has no use for (it shows
    what runs now), accepted so the seed's runbooks are not refused for it."""

    def normalize(params: dict, scope: Any) -> dict:
        if name not in params:
            return params
        value = params[name]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1440:
            raise StepBlocked(f"{name} must be an integer from 1 to 1440")
        return {k: v for k, v in params.items() if k != name}

    return normalize


def backend_pid(value: Any) -> Any:
    """A query_id is a PostgreSQL backend pid: an integer, possibly written as a string."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value  # the schema refuses anything else


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    return (
        p.scheme,
        (p.hostname or "").lower(),
        p.port or {"http": 80, "https": 443}.get(p.scheme),
    )


def health_url(params: dict, scope: Any) -> dict:
    """`url` as the incident's own http target plus a path under that target's URL."""
    if "url" not in params:
        return params
    url = params["url"]
    if not isinstance(url, str) or not url:
        raise StepBlocked("url must be a non-empty string")
    try:
        parts = urlsplit(url)
        origin = _origin(url)
    except ValueError as exc:
        raise StepBlocked(f"url {url[:80]!r} is not a URL") from exc
    if parts.query or parts.fragment or parts.username or parts.password:
        raise StepBlocked("url may not carry a query, a fragment or credentials")
    own = scope.own or frozenset()
    candidates = [t for t in scope.usable() if t.kind == "http" and t.name in own]
    wanted = params.get("target")
    for target in candidates:
        if wanted and target.name != wanted:
            continue
        base = urlsplit(target.url)
        base_path = base.path.rstrip("/")
        if _origin(target.url) != origin:
            continue
        if parts.path.rstrip("/") == base_path:
            path = ""
        elif parts.path.startswith(base_path + "/"):
            path = parts.path[len(base_path) :]
        else:
            continue
        out = {k: v for k, v in params.items() if k != "url"}
        out["target"] = target.name
        if path:
            out["path"] = path
        return out
    shown = url[:120]
    if not candidates:
        raise StepBlocked(
            f"url {shown} is not checked: the incident's service has no http target in the catalog"
        )
    names = ", ".join(t.name for t in candidates)
    raise StepBlocked(
        f"url {shown} is not under an http target of the incident's service ({names})"
    )


def restart_service(params: dict, scope: Any) -> dict:
    """`service` as the Fly.io target the catalog gives that service."""
    if "service" not in params:
        return params
    name = params["service"]
    if not isinstance(name, str) or not name:
        raise StepBlocked("service must be a non-empty string")
    names = service_target_names(name)
    if names is None:
        raise StepBlocked(f"service {name[:80]!r} is not in the service catalog")
    fly = sorted(t.name for t in scope.usable() if t.kind == "fly" and t.name in names)
    wanted = params.get("target")
    if wanted and wanted not in fly:
        raise StepBlocked(f"target {wanted!r} is not a Fly.io target of service {name!r}")
    if not fly:
        raise StepBlocked(f"service {name!r} has no Fly.io target this incident may use")
    out = {k: v for k, v in params.items() if k != "service"}
    out["target"] = wanted or fly[0]
    return out


def configured_channels(scope: Any) -> set[str]:
    """Channel names (without #) that Slack is configured for here."""
    channels = {settings.SLACK_CHANNEL} if settings.SLACK_CHANNEL else set()
    for target in scope.usable():
        if target.kind != "slack":
            continue
        options = target.options or {}
        channels.add(options.get("channel") or "")
        channels.update(options.get("channels") or [])
    return {str(c).lstrip("#") for c in channels if c}


def notify_channel(params: dict, scope: Any) -> dict:
    """A `channel` must be one Slack is configured for; never a free destination."""
    channel = params.get("channel")
    if not channel:
        return params
    known = configured_channels(scope)
    if str(channel).lstrip("#") not in known:
        listed = ", ".join(f"#{c}" for c in sorted(known)) or "none"
        raise StepBlocked(
            f"channel {str(channel)[:80]!r} is not a configured channel (configured: {listed})"
        )
    return params
