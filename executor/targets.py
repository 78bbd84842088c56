"""Where a step runs. A target has a name, a kind and a base setting (URL).

Targets come from the environment (TARGET_<NAME>_KIND, TARGET_<NAME>_URL,
TARGET_<NAME>_SECRET_ENV naming the variable that holds a token), and, on the
embedded default, the app's own database and health URL. Secrets are read from
the environment when a step runs and never leave this module's objects.
"""

import base64
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from .models import Service
from .models import Target as TargetRow
from .results import StepBlocked

MIN_SECRET_CHARS = 4
# Path segments that carry a token: after a webhook prefix, or long random-looking ones.
_TOKEN_PREFIXES = {"services", "hooks", "webhooks", "webhook", "token", "tokens", "keys", "key"}
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-]{6,}")
_LONG_TOKEN = re.compile(r"(?=[A-Za-z_\-]*\d)(?=[0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{20,}")

KINDS = ("postgres", "sqlite", "redis", "http", "prometheus", "loki", "slack", "fly", "timeline")


@dataclass(frozen=True)
class ResolvedTarget:
    """A target as a step uses it: built-in, from the environment or from a catalog row.

    The catalog row itself is `executor.models.Target`.
    """

    name: str
    kind: str
    url: str
    secret_env: str = ""
    demo: bool = False
    options: dict = field(default_factory=dict, compare=False, hash=False)
    # The catalog service a step runs this target for (set by TargetScope.resolve),
    # so a check can scope what it reads to that service; "" when unscoped.
    service: str = field(default="", compare=False, hash=False)
    # Set by TargetScope.resolve when the target is not the incident's service's own:
    # every plan and result on it says so ("not about checkout: ...").
    not_about: str = field(default="", compare=False, hash=False)

    @property
    def secret(self) -> str:
        return os.environ.get(self.secret_env, "") if self.secret_env else ""

    @property
    def display_url(self) -> str:
        """The URL with any password taken out: safe for plans, logs and the timeline."""
        if self.kind == "slack":
            return f"slack:{self.name}"  # a webhook URL is itself the secret
        shown = redact_url(self.url)
        if self.options.get("secret_in_path"):
            try:
                shown = urlunsplit(urlsplit(shown)._replace(path="/***"))
            except ValueError:
                return "<invalid url>"
        return shown

    def secret_values(self) -> set[str]:
        """Every secret of this target as written in its URL or sent with a request."""
        values = {self.secret}
        try:
            parts = urlsplit(self.url)
        except ValueError:
            return values
        user, password = parts.username or "", parts.password or ""
        values |= {user, password}
        if user or password:
            basic = f"{unquote(user)}:{unquote(password)}".encode()
            values.add(base64.b64encode(basic).decode())
        segments = [seg for seg in parts.path.split("/") if seg]
        if self.options.get("secret_in_path"):
            values.update(segments)
        else:
            # Slack-style webhooks: every segment after /services/ is part of the token.
            prefix = next((i for i, seg in enumerate(segments) if seg in _TOKEN_PREFIXES), None)
            for i, seg in enumerate(segments):
                after_prefix = prefix is not None and i > prefix
                if _LONG_TOKEN.fullmatch(seg) or (after_prefix and _TOKEN_LIKE.fullmatch(seg)):
                    values.add(seg)
        for pair in parts.query.split("&"):
            values.add(pair.partition("=")[2])
        values |= {value for _, value in parse_qsl(parts.query, keep_blank_values=True)}
        return {v for v in values if v}

    def scrub(self, text: str) -> str:
        """`text` with this target's URL and every form of each of its secrets taken out."""
        forms: set[str] = set()
        for value in self.secret_values():
            for plain in {value, unquote(value), unquote_plus(value)}:
                forms |= {
                    plain,
                    quote(plain, safe=""),
                    quote(plain),
                    quote_plus(plain),
                    json.dumps(plain)[1:-1],
                }
        # Short values (a port, "1") would mangle ordinary text; secrets are longer.
        forms = {f for f in forms if len(f) >= MIN_SECRET_CHARS}
        if self.url:
            text = text.replace(self.url, self.display_url)
        for secret in sorted(forms, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def public(self) -> dict:
        return {"name": self.name, "kind": self.kind, "url": self.display_url}


# Kinds whose target is a system of its own (a database, a cache, a web app, a Fly app):
# a check on one is about that system. Prometheus and Loki hold every service's data
# and a step selects the service in its query; timeline and Slack only carry messages.
SYSTEM_KINDS = frozenset({"postgres", "sqlite", "redis", "http", "fly"})
_LABEL_SERVICE_CHARS = 60


def not_about_label(service: str, target: ResolvedTarget) -> str:
    """Why a step on `target` is not about the incident's `service` (as the incident wrote it)."""
    shown = " ".join(service.split())
    if len(shown) > _LABEL_SERVICE_CHARS:
        shown = shown[: _LABEL_SERVICE_CHARS - 1] + "…"
    who = f"not about {shown}" if shown else "not about any named service"
    if target.demo:
        return f"{who}: target {target.name} is this incident tool itself"
    if not shown:
        return f"{who}: target {target.name} is shared"
    return f"{who}: target {target.name} is shared, not {shown}'s own"


def labelled(target: ResolvedTarget | None, text: str) -> str:
    """`text` (a plan, a result) headed by the target's "not about" label when it has one."""
    if target is None or not target.not_about:
        return text
    return f"[{target.not_about}] {text}"


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password or parts.username:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        netloc = f"{user}:***@{host}" if parts.password else f"{user}@{host}"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts._replace(query="", fragment=""))


def _builtin_targets() -> dict[str, ResolvedTarget]:
    # The timeline is always there: notifications land on it when Slack is not configured.
    targets = {"timeline": ResolvedTarget("timeline", "timeline", "", demo=True)}
    if not settings.EXECUTOR_DEMO_TARGETS:
        return targets
    db = connection.settings_dict
    targets["app"] = ResolvedTarget(
        "app", "http", settings.SITE_URL.rstrip("/") + "/healthz", demo=True
    )
    if db["ENGINE"].endswith("sqlite3"):
        targets["app-db"] = ResolvedTarget("app-db", "sqlite", f"sqlite:///{db['NAME']}", demo=True)
    elif db["ENGINE"].endswith("postgresql"):
        host = db.get("HOST") or "localhost"
        port = db.get("PORT") or 5432
        user = quote(db.get("USER") or "", safe="")
        pw = quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{pw}@" if pw else (f"{user}@" if user else "")
        targets["app-db"] = ResolvedTarget(
            "app-db", "postgres", f"postgresql://{auth}{host}:{port}/{db['NAME']}", demo=True
        )
    return targets


# Kinds whose connection string is itself the secret (password in a DSN, webhook URL).
_SECRET_IS_URL = {"postgres", "redis", "slack"}


def _from_row(row) -> ResolvedTarget:
    secret_value = os.environ.get(row.secret_env, "") if row.secret_env else ""
    url, secret_env = row.base, row.secret_env
    if row.kind == "slack":
        # A Slack secret is either the incoming-webhook URL itself or a bot token.
        if secret_value.startswith("https://"):
            url, secret_env = secret_value, ""
        elif not url:
            url = "https://slack.com/api"
    elif row.kind in _SECRET_IS_URL and secret_value:
        url = secret_value
    options = dict(row.options or {})
    if row.kind == "fly" and row.base and "://" not in row.base:
        options.setdefault("app", row.base)
    return ResolvedTarget(row.name, row.kind, url, secret_env, options=options)


def configured_targets() -> dict[str, ResolvedTarget]:
    """Every target: built-in, then the environment's, then the catalog's (last one wins)."""
    pinned = _pinned.get()
    if pinned is None:
        return _read_targets()
    if ("targets",) not in pinned:
        pinned[("targets",)] = _read_targets()
    return dict(pinned[("targets",)])


def _read_targets(rows: Iterable[TargetRow] | None = None) -> dict[str, ResolvedTarget]:
    """Built-in, environment and catalog targets; `rows` are the enabled catalog rows
    when the caller has read them already."""
    targets = _builtin_targets()
    for name, conf in settings.EXECUTOR_TARGETS.items():
        kind = (conf.get("kind") or "").lower()
        if kind not in KINDS:
            continue  # an unknown kind is never a target
        targets[name] = ResolvedTarget(name, kind, conf.get("url", ""), conf.get("secret_env", ""))
    for row in TargetRow.objects.filter(enabled=True) if rows is None else rows:
        targets[row.name] = _from_row(row)
    return targets


def service_target_names(service: str) -> set[str] | None:
    """The names of a catalog service's enabled targets, or None when the service is not
    in the catalog (its scope's `own`, read in one statement).

    The name must be the catalog's exactly: "Checkout" or " checkout" is not the
    catalog's "checkout" (names differing in case may be different services).
    """
    own = target_scope(service).own
    return set(own) if own is not None else None


def catalog_service(service: str) -> Service | None:
    """The catalog's row for `service`, or None; read once per service inside
    `catalog_pinned()` (not at all when the scope found the service unknown)."""
    if not service:
        return None
    pinned = _pinned.get()
    if pinned is not None and ("service", service) in pinned:
        return pinned[("service", service)]
    row = Service.objects.filter(name=service).first()
    if pinned is not None:
        pinned[("service", service)] = row
    return row


@dataclass(frozen=True)
class TargetScope:
    """The targets one service may use, computed once per execution or generation.

    `own` is the service's catalog targets (None when the service is not in the
    catalog); `elsewhere` the catalog targets that belong only to other services,
    which are never used for this one: for a service not in the catalog, every
    target some service claims. `service` is the catalog name, "" when unscoped.
    """

    targets: dict[str, ResolvedTarget]
    own: frozenset[str] | None
    elsewhere: frozenset[str]
    service: str = ""
    # The service as the incident wrote it (even when the catalog does not know it).
    asked: str = ""

    def usable(self) -> list[ResolvedTarget]:
        return [t for t in self.targets.values() if t.name not in self.elsewhere]

    def offered(self, kinds: tuple[str, ...]) -> list[ResolvedTarget]:
        """Targets of these kinds, best first: the service's own, then real over demo, by name."""
        own = self.own or frozenset()
        return sorted(
            (t for t in self.usable() if t.kind in kinds),
            key=lambda t: (t.name not in own, t.demo, t.name),
        )

    def resolve(self, *, name: str | None, kinds: tuple[str, ...]) -> ResolvedTarget:
        """The target a step names, or the best one of a kind it can use; StepBlocked if none."""
        if name:
            target = self.targets.get(name)
            if target is None:
                raise StepBlocked(f"no target named {name!r} is configured")
            if name in self.elsewhere:
                raise StepBlocked(f"target {name!r} belongs to another service")
            if target.kind not in kinds:
                raise StepBlocked(
                    f"target {name!r} is a {target.kind} target; this step needs {' or '.join(kinds)}"
                )
            return self._for_service(target)
        candidates = self.offered(kinds)
        if not candidates:
            raise StepBlocked(f"no target configured for this step (needs {' or '.join(kinds)})")
        return self._for_service(candidates[0])

    def is_about_service(self, target: ResolvedTarget) -> bool:
        """Whether a step on `target` is about the incident's service.

        Its own catalog targets are; a shared target named exactly like the service
        (TARGET_<SERVICE>_URL) is taken to be. A demo target (this tool itself), or
        any other system target outside the service, is not. Kinds that are not a
        system of their own (metrics, logs, messages) are not judged.
        """
        if target.kind not in SYSTEM_KINDS:
            return True
        if self.own and target.name in self.own:
            return True
        return not target.demo and bool(self.asked) and target.name == self.asked

    def _for_service(self, target: ResolvedTarget) -> ResolvedTarget:
        if not self.is_about_service(target):
            target = replace(target, not_about=not_about_label(self.asked, target))
        return replace(target, service=self.service) if self.service else target


# Inside `catalog_pinned()`: the scopes computed so far, by service, so one stage reads
# the catalog once however many times its steps (prompt, schema, checks) ask.
_pinned: ContextVar[dict[tuple, object] | None] = ContextVar("pinned_catalog", default=None)


@contextmanager
def catalog_pinned() -> Iterator[None]:
    """Within the block, `target_scope` reads the catalog once per service. A block
    inside another shares the outer one's reads (one stage, one catalog)."""
    if _pinned.get() is not None:
        yield
        return
    token = _pinned.set({})
    try:
        yield
    finally:
        _pinned.reset(token)


@contextmanager
def catalog_unpinned() -> Iterator[None]:
    """Within the block, `target_scope` reads the catalog afresh even inside a pinned
    stage: the executor decides on the catalog as it is, not on the author's copy."""
    token = _pinned.set(None)
    try:
        yield
    finally:
        _pinned.reset(token)


def target_scope(service: str = "") -> TargetScope:
    pinned = _pinned.get()
    if pinned is None:
        return _read_scope(service)
    if ("scope", service) not in pinned:
        pinned[("scope", service)] = _read_scope(service)
    return pinned[("scope", service)]


def _scope_rows(service: str) -> tuple[list[TargetRow], bool]:
    """(every enabled catalog target, with `linked`: some service claims it, and `own`:
    `service` does; whether `service` is in the catalog), in one statement. The targets
    are left-joined to a one-row `known`, so the answer comes even with no target."""
    qn = connection.ops.quote_name
    targets, services = qn(TargetRow._meta.db_table), qn(Service._meta.db_table)
    links = qn(Service.targets.through._meta.db_table)
    # Table names from the models' metadata; the service name goes as a parameter.
    sql = f"""
        SELECT t.*,
               EXISTS (SELECT 1 FROM {links} l WHERE l.target_id = t.id) AS linked,
               EXISTS (SELECT 1 FROM {links} l JOIN {services} s ON s.id = l.service_id
                       WHERE l.target_id = t.id AND s.name = %s) AS own,
               k.known
        FROM (SELECT EXISTS (SELECT 1 FROM {services} WHERE name = %s) AS known) k
        LEFT JOIN {targets} t ON t.enabled
        ORDER BY t.name
    """  # noqa: S608
    rows = list(TargetRow.objects.raw(sql, [service, service]))
    known = bool(rows and rows[0].known)
    return [r for r in rows if r.pk is not None], known


def _read_scope(service: str) -> TargetScope:
    rows, known = _scope_rows(service)
    known = known and bool(service)
    pinned = _pinned.get()
    if pinned is not None and not known:
        pinned[("service", service)] = None  # catalog_service need not ask again
    # Not in the catalog (no service, an unknown name, a near miss): no target a
    # service claims, only the shared ones.
    own = frozenset(r.name for r in rows if r.own) if known else None
    elsewhere = frozenset(r.name for r in rows if r.linked) - (own or frozenset())
    targets = _read_targets(rows)
    if pinned is not None:
        pinned.setdefault(("targets",), targets)
    return TargetScope(dict(targets), own, elsewhere, service if known else "", asked=service)


def resolve_target(
    *, name: str | None, kinds: tuple[str, ...], service: str = "", scope: TargetScope | None = None
) -> ResolvedTarget:
    """The target a step names, or the first configured one of a kind it can use.

    Raises StepBlocked with a reason a responder can act on.
    """
    return (scope or target_scope(service)).resolve(name=name, kinds=kinds)
