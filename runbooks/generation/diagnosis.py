"""Diagnosis from evidence: hypotheses in root-cause categories, each citing evidence ids.

Two halves:
- `diagnose` is the offline diagnoser: it reads the gathered evidence (changes,
  alerts, golden-signal change points, new log templates, similar incidents) and the
  incident text, and scores each category from the items that support it.
- `score_hypotheses` is applied to any author's hypotheses (Claude's too): a
  hypothesis citing an evidence id that does not exist is dropped, and confidence is
  computed here from the cited evidence, never taken from the author as is.

With nothing decisive the diagnosis is "insufficient_evidence" and confidence stays low.
"""

import re
from dataclasses import asdict, dataclass, field
from typing import Any

CATEGORIES = (
    "deployment_issue",
    "configuration_error",
    "capacity_problem",
    "dependency_failure",
    "code_bug",
    "external_factor",
)
# How close before a metric's onset a change must be to be suspected.
SUSPECT_MINUTES = 45
DECISIVE = 0.5  # a hypothesis needs this much evidence weight to be more than a guess
MAX_CONFIDENCE = 0.95
INSUFFICIENT_CAP = 0.3

# Words in log templates, alert titles and incident text that point at a category.
_LEXICON: dict[str, tuple[str, ...]] = {
    "capacity_problem": (
        "out of memory", "outofmemory", "oom", "oomkilled", "pool exhausted", "too many connections",
        "no space left", "disk full", "quota", "throttl", "saturat", "queue full", "backlog",
        "memory limit", "cpu limit", "connection limit", "max_connections", "heap",
        "capacity", "load shedding", "overloaded", "rejected execution", "evict",
    ),
    "dependency_failure": (
        "upstream", "connection refused", "connect timeout", "timed out connecting",
        "dependency", "downstream", "circuit breaker", "circuit open", "econnrefused",
        "no healthy upstream", "unavailable from", "503 from", "502 from", "bad gateway",
        "could not connect", "connection reset", "broken pipe", "replica lag",
    ),
    "configuration_error": (
        "config", "configuration", "missing env", "environment variable", "invalid setting",
        "permission denied", "forbidden", "unauthorized", "certificate", "x509",
        "feature flag", "misconfigur", "invalid value", "no such host", "unknown key",
        "access denied", "expired credential", "401", "403",
    ),
    "code_bug": (
        "nullpointer", "null pointer", "typeerror", "keyerror", "attributeerror",
        "indexerror", "valueerror", "panic", "segfault", "traceback", "exception",
        "undefined", "nil pointer", "assertion", "stack overflow", "unhandled",
        "division by zero", "cannot read propert", "deadlock", "race",
    ),
    "external_factor": (
        "third-party", "third party", "provider", "vendor", "rate limited by", "429",
        "dns", "cdn", "region", "cloud", "outage at", "status page", "isp", "bgp",
        "stripe", "twilio", "sendgrid", "aws", "gcp", "azure", "cloudflare", "ddos",
        "bot traffic", "external", "partner api",
    ),
    "deployment_issue": (
        "deploy", "deployed", "release", "rollout", "new version", "after upgrade",
        "since the upgrade", "canary",
    ),
}  # fmt: skip


@dataclass
class Hypothesis:
    category: str
    component: str
    statement: str
    evidence: list[str] = field(default_factory=list)
    confidence: float = 0.0
    weight: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("weight")
        return out


@dataclass
class Diagnosis:
    status: str  # diagnosed | insufficient_evidence
    hypotheses: list[Hypothesis]
    suspect_change: dict | None = None
    unavailable: list[str] = field(default_factory=list)

    @property
    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "hypotheses": [h.as_dict() for h in self.hypotheses],
            "unavailable": list(self.unavailable),
        }


# An exception or error class (`RecursionError`, `BeanCreationException`) or a Go panic
# names a failure in code whatever the language; the lexicon cannot list them all.
_EXCEPTION_CLASS = re.compile(r"\b(?:[A-Z][a-z0-9]+)+(?:Error|Exception)\b|\bpanic: ")


# Secret material refused (a signing secret that no longer matches, a password not
# accepted, `SignatureDoesNotMatch`, an API key revoked) is configuration: the service
# holds a secret, key or credential its peer no longer agrees with, as after a rotation
# done on one side only. The wording varies too much to list, but it is always such a
# noun and a refusal within one clause, in either order.
_KEY_MATERIAL = (
    r"secrets?|signatures?|credentials?|passwords?|passphrase|api[ _-]?keys?|access[ _-]?keys?"
    r"|secret[ _-]?keys?|private[ _-]?keys?|signing[ _-]?keys?|hmac|jwts?"
    # A bare "token" is also a parser's ("invalid or unexpected token"): a code bug.
    r"|(?:access|auth|bearer|api|refresh|session|client)[ _-]?tokens?"
)
_REFUSED = (
    r"mismatch(?:ed)?|(?:does|do|did)(?:n't| not) match|not match(?:ing)?|invalid|incorrect"
    r"|wrong|rejected|not accepted|revoked|expired|verification failed"
    r"|failed (?:to )?verif(?:y|ication)|authentication failed|auth failed"
)
_KEY_REFUSED = re.compile(
    rf"\b(?:{_KEY_MATERIAL})\b[^.;:,()\n]{{0,40}}?\b(?:{_REFUSED})\b"
    rf"|\b(?:{_REFUSED})\b[^.;:,()\n]{{0,25}}?\b(?:{_KEY_MATERIAL})\b"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _structure(text: str, category: str) -> bool:
    """Whether the line has the shape of a failure of this category, whatever its words."""
    if category == "code_bug":
        return bool(_EXCEPTION_CLASS.search(text))
    if category == "configuration_error":
        # `SignatureDoesNotMatch`, `InvalidAccessKeyId`: error codes written as one word.
        return bool(_KEY_REFUSED.search(_CAMEL.sub(" ", text).lower()))
    return False


def _hits(text: str, category: str) -> int:
    low = text.lower()
    hits = sum(1 for word in _LEXICON[category] if word in low)
    if not hits and _structure(text, category):
        hits = 1
    return hits


_HOST = re.compile(
    r"(?:\bto|\bfrom|calling|upstream|host|open for|call to|connect to|reach)[\s=:]+"
    r"([a-z][a-z0-9_-]{1,60})"
)
_DOMAIN = re.compile(
    r"\b([a-z][a-z0-9-]{1,60})\.(?:[a-z0-9-]+\.)*(?:com|net|io|org|internal|local)\b"
)
# A host under a public suffix is someone else's system; under these, one of ours.
_PUBLIC_HOST = re.compile(r"\b((?:[a-z0-9-]{1,63}\.)+(?:com|net|io|org|dev|app|cloud|co))\b")
_GENERIC_LABELS = {"api", "apis", "www", "app", "cdn", "static", "edge", "eu", "us", "gateway"}
_PROVIDERS = (
    "stripe", "twilio", "sendgrid", "cloudflare", "fastly", "akamai", "aws", "gcp", "azure",
    "github", "slack", "okta", "auth0", "paypal", "adyen", "mailgun", "datadog",
)  # fmt: skip
_NOT_NAMES = {
    "the", "a", "an", "peer", "port", "region", "bucket", "host", "service", "external",
    "internal", "unknown", "client", "server", "localhost",
}  # fmt: skip


def _named_dependency(text: str, dependencies: list[str], *, external: bool = False) -> str:
    """The other system a line names: a catalog dependency, a known provider (for
    external causes), a host or a domain; "" when it names none."""
    low = text.lower()
    for dep in dependencies:
        if dep and dep.lower() in low:
            return dep
    if external:
        for provider in _PROVIDERS:
            if re.search(rf"\b{provider}\b", low):
                return provider
    for pattern in (_HOST, _DOMAIN):
        for found in pattern.finditer(low):
            if found.group(1) not in _NOT_NAMES:
                return found.group(1)
    return ""


def _outside_system(text: str, ours: list[str]) -> str:
    """The name of a system outside ours that a line names by its public host name
    (`api.paypal.com` → paypal), "" when it names none. A host that names one of our
    catalog services is ours."""
    for found in _PUBLIC_HOST.finditer(text.lower()):
        labels = found.group(1).split(".")[:-1]
        if any(dep and dep.lower() in labels for dep in ours):
            continue
        names = [label for label in labels if label not in _GENERIC_LABELS]
        if names:
            return names[0]
    return ""


def _catalog_dependency(text: str, dependencies: list[str]) -> str:
    """The catalog dependency a line names as a word of its own, "" when none."""
    low = text.lower()
    for dep in sorted(dependencies, key=len, reverse=True):
        if dep and re.search(rf"(?<![a-z0-9_/-]){re.escape(dep.lower())}(?![a-z0-9_/-])", low):
            return dep
    return ""


class _Board:
    """Weights and cited evidence per category, and the component each names."""

    def __init__(self, service: str = "") -> None:
        self.service = service
        self.weight: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
        self.cites: dict[str, list[str]] = {c: [] for c in CATEGORIES}
        self.component: dict[str, str] = {}
        self.why: dict[str, list[str]] = {c: [] for c in CATEGORIES}

    def add(self, category: str, weight: float, key: str, why: str, component: str = "") -> None:
        self.weight[category] += weight
        if key and key not in self.cites[category]:
            self.cites[category].append(key)
        if why:
            self.why[category].append(why)
        # A named other system beats the incident's own service, the fallback name.
        current = self.component.get(category)
        if component and (current is None or (current == self.service != component)):
            self.component[category] = component


def _metric_onsets(items: list[dict]) -> list[tuple[str, float, dict]]:
    """(key, minutes before incident onset, change) of each signal that changed."""
    out = []
    for item in items:
        data = item.get("data") or {}
        change = data.get("change")
        if item.get("collector") == "metrics" and change:
            out.append((item["key"], float(data.get("onset_minutes_before_incident") or 0), data))
    return out


def diagnose(*, evidence: list[dict], text: str, service: str) -> Diagnosis:
    """The offline diagnoser. Deterministic; every weight comes from a cited item."""
    board = _Board(service)
    ok = [e for e in evidence if e.get("status") == "ok"]
    # The catalog's dependencies of the service, as the changes collector read them.
    catalog = sorted(
        {
            str(dep)
            for e in evidence
            if e.get("collector") == "changes"
            for dep in (e.get("data") or {}).get("dependencies") or []
        }
    )
    metrics = _metric_onsets(ok)
    # The metrics' onset, when they moved; else the incident's own onset (0).
    metric_onset = max((m for _, m, _ in metrics), default=0.0)
    dependencies = sorted(
        {
            str((e.get("data") or {}).get("service"))
            for e in ok
            if e.get("collector") == "changes" and not (e.get("data") or {}).get("own_service")
        }
        | set(catalog)
    )

    # Changes: the one closest before the metrics moved is the suspect.
    suspect = None
    for item in ok:
        data = item.get("data") or {}
        if item.get("collector") != "changes" or data.get("status") == "failed":
            continue
        # Minutes between the change and the metrics' onset (positive: change first).
        lead = float(data.get("minutes_before_onset") or 0) - metric_onset
        if lead < -2 or lead > SUSPECT_MINUTES:
            continue  # after the trouble began, or long before: innocent
        closeness = 1.0 - max(lead, 0) / SUSPECT_MINUTES  # 1 right before, 0 at the edge
        kind = data.get("kind")
        weight = 0.6 + 0.6 * closeness
        if not data.get("own_service"):
            board.add(
                "dependency_failure",
                weight * 0.8,
                item["key"],
                f"{data.get('service')} changed {lead:.0f} min before the metrics moved",
                str(data.get("service")),
            )
            continue
        if kind in ("deploy", "rollback"):
            category = "deployment_issue"
        elif kind in ("config", "feature_flag"):
            category = "configuration_error"
        elif kind == "scale":
            category = "capacity_problem"
        else:
            continue
        if suspect is None or lead < suspect[1]:
            suspect = (item, lead, category)
        board.add(category, weight, item["key"], item.get("summary", ""), service)
    if suspect is not None:
        # Two changes close together: only the closest keeps its full weight.
        for item in ok:
            if item is not suspect[0] and item.get("collector") == "changes":
                cat = suspect[2]
                if item["key"] in board.cites[cat]:
                    board.weight[cat] -= 0.3

    # Metrics: saturation and traffic point at capacity; errors/latency alone say little.
    for key, _, data in metrics:
        signal = str(data.get("signal", ""))
        change = data["change"]
        if signal == "saturation" and change.get("direction") == "up":
            board.add("capacity_problem", 0.6, key, f"saturation rose {change.get('change_pct')}%")
        elif signal == "traffic" and change.get("direction") == "up":
            pct = change.get("change_pct") or 0
            if pct is None or pct >= 80:
                board.add("capacity_problem", 0.5, key, "traffic surged", service)
                board.add("external_factor", 0.2, key, "traffic surged from outside")
        elif signal in ("errors", "latency") and suspect is not None:
            board.add(suspect[2], 0.2, key, f"{signal} moved right after the change")

    # Log templates: what is new since onset says what kind of failure it is; a new one
    # while the errors or latency moved is the failure the metrics show.
    moved = [key for key, _, data in metrics if data.get("signal") in ("errors", "latency")]
    for item in ok:
        if item.get("collector") != "logs":
            continue
        data = item.get("data") or {}
        line = f"{data.get('template', '')} {data.get('sample', '')}"
        factor = 1.0 if data.get("new") else 0.3
        named = _catalog_dependency(line, catalog)
        outside = "" if named else _outside_system(line, [*catalog, service])
        for category in CATEGORIES:
            if category == "deployment_issue":
                continue
            hits = _hits(line, category)
            if not hits:
                continue
            weight = min(0.6, 0.35 + 0.1 * hits) * factor
            component = ""
            if category == "dependency_failure" and outside:
                # A failing system outside ours is an external factor, not a dependency.
                category, component = "external_factor", outside
            elif category in ("dependency_failure", "external_factor"):
                component = _named_dependency(
                    line, dependencies, external=category == "external_factor"
                )
            if category == "code_bug" and suspect is not None and suspect[2] == "deployment_issue":
                # New exceptions right after a deploy are the deploy's fault.
                board.add("deployment_issue", weight * 0.8, item["key"], "new errors since deploy")
                continue
            board.add(category, weight, item["key"], line[:120], component or service)
            if data.get("new") and moved:
                board.add(category, 0.2, moved[0], "")
        # Whom the errors name, whatever their words: a catalog dependency of the service
        # is a dependency failing; a public host is a system outside ours.
        for category, other, why in (
            ("dependency_failure", named, f"errors name {named}"),
            ("external_factor", outside, f"errors name {outside}, outside our systems"),
        ):
            # Only a new template: one that was there before onset does not explain it.
            if other and data.get("new"):
                board.add(category, 0.5, item["key"], why, other)
                if moved:
                    board.add(category, 0.2, moved[0], "")

    # Alerts and the incident text: words only, weak, but they name dependencies.
    for item in ok:
        if item.get("collector") != "alerts":
            continue
        data = item.get("data") or {}
        line = f"{data.get('title', '')} {data.get('description', '')}"
        other = data.get("service") and data.get("service") != service
        if other and not data.get("own"):
            board.add(
                "dependency_failure",
                0.4,
                item["key"],
                f"{data.get('service')} is alerting too",
                str(data.get("service")),
            )
        for category in CATEGORIES:
            hits = _hits(line, category)
            if hits:
                component = (
                    _named_dependency(line, dependencies, external=category == "external_factor")
                    if category in ("dependency_failure", "external_factor")
                    else ""
                )
                board.add(category, min(0.3, 0.15 * hits), item["key"], "", component or service)
    for category in CATEGORIES:
        hits = _hits(text, category)
        if hits:
            component = (
                _named_dependency(text, dependencies, external=category == "external_factor")
                if category in ("dependency_failure", "external_factor")
                else ""
            )
            board.add(category, min(0.25, 0.1 * hits), "", "", component or service)

    # Similar past incidents: their outcome is a weak prior, cited for the responder; a
    # published root cause of the same category on the same service adds a little.
    similar = [e["key"] for e in ok if e.get("collector") == "similar"]
    for item in ok:
        data = item.get("data") or {}
        outcome = data.get("outcome") or {}
        category = outcome.get("category") if isinstance(outcome, dict) else None
        same = item.get("collector") == "similar" and data.get("service") == service
        if same and category in CATEGORIES:
            board.add(category, 0.1, item["key"], f"#{data.get('id')} had this cause")

    ranked = sorted(CATEGORIES, key=lambda c: (-board.weight[c], CATEGORIES.index(c)))
    known = {e.get("key") for e in evidence}
    hypotheses = []
    for category in ranked:
        if board.weight[category] <= 0:
            continue
        hypothesis = Hypothesis(
            category=category,
            component=board.component.get(category) or service or "unknown",
            statement=_statement(category, board, service),
            evidence=board.cites[category][:6] + similar[:1],
            weight=board.weight[category],
        )
        hypotheses.append(hypothesis)
    hypotheses = score_hypotheses(hypotheses, evidence, known=known)
    decisive = bool(hypotheses) and hypotheses[0].weight >= DECISIVE and hypotheses[0].evidence
    if not decisive:
        for h in hypotheses:
            h.confidence = min(h.confidence, INSUFFICIENT_CAP)
    suspect_change = (suspect[0].get("data") if suspect else None) if decisive else None
    return Diagnosis(
        status="diagnosed" if decisive else "insufficient_evidence",
        hypotheses=hypotheses[:5],
        suspect_change=suspect_change
        if hypotheses and hypotheses[0].category == "deployment_issue"
        else None,
    )


_TEXT = {
    "deployment_issue": "A recent deploy of {c} introduced the failure",
    "configuration_error": "A configuration or feature-flag change on {c} broke it",
    "capacity_problem": "{c} ran out of capacity (load above what it can serve)",
    "dependency_failure": "A dependency, {c}, is failing and {s} suffers from it",
    "code_bug": "A defect in {c}'s code (an error path that was always there)",
    "external_factor": "Something outside our systems ({c}) is causing it",
}


def _statement(category: str, board: _Board, service: str) -> str:
    component = board.component.get(category) or service or "the service"
    base = _TEXT[category].format(c=component, s=service or "the service")
    why = [w for w in board.why[category] if w][:2]
    return (base + (": " + "; ".join(why) if why else ""))[:480]


def _weight_of(item: dict) -> float:
    """How much one cited item can support a hypothesis, by what it is."""
    if item.get("status") != "ok":
        return 0.0
    collector = item.get("collector")
    data = item.get("data") or {}
    if collector == "changes":
        return 0.35
    if collector == "metrics":
        return 0.25 if data.get("change") else 0.0
    if collector == "logs":
        return 0.25 if data.get("new") else 0.1
    if collector == "alerts":
        return 0.1
    if collector == "similar":
        return 0.05
    return 0.0


def score_hypotheses(
    hypotheses: list[Hypothesis], evidence: list[dict], *, known: set | None = None
) -> list[Hypothesis]:
    """Drop hypotheses citing unknown evidence; confidence from what they cite, and less
    when a rival hypothesis is nearly as well supported."""
    by_key = {e.get("key"): e for e in evidence}
    known = known if known is not None else set(by_key)
    kept = [
        h
        for h in hypotheses
        if h.category in CATEGORIES and all(key in known for key in h.evidence)
    ]
    for h in kept:
        support = sum(_weight_of(by_key[k]) for k in h.evidence if k in by_key)
        h.confidence = round(min(MAX_CONFIDENCE, support), 2)
        if not h.weight:
            h.weight = support
    kept.sort(key=lambda h: (-h.weight, -h.confidence))
    if len(kept) > 1 and kept[0].weight:
        share = kept[1].weight / kept[0].weight
        if share > 0.6:
            kept[0].confidence = round(kept[0].confidence * (1.3 - share), 2)
    return kept


def hypotheses_from(document_diagnosis: Any, evidence: list[dict]) -> Diagnosis:
    """An author's `diagnosis` (Claude's) re-scored by our rules: unknown citations out."""
    raw = document_diagnosis.get("hypotheses") if isinstance(document_diagnosis, dict) else None
    parsed = []
    for h in raw or []:
        if not isinstance(h, dict):
            continue
        cites = [str(k) for k in h.get("evidence") or [] if isinstance(k, str | int)]
        parsed.append(
            Hypothesis(
                category=str(h.get("category", "")),
                component=str(h.get("component", ""))[:100],
                statement=str(h.get("statement", ""))[:480],
                evidence=cites[:10],
            )
        )
    kept = score_hypotheses(parsed, evidence)
    decisive = bool(kept) and kept[0].confidence >= DECISIVE
    if not decisive:
        for h in kept:
            h.confidence = min(h.confidence, INSUFFICIENT_CAP)
    return Diagnosis(status="diagnosed" if decisive else "insufficient_evidence", hypotheses=kept)


def rescore_document(document: dict, evidence: list[dict]) -> dict:
    """An author's runbook with its diagnosis checked against the evidence: hypotheses
    citing unknown ids dropped, confidence ours. A runbook without a diagnosis (the
    contract's older shape) is left as it is."""
    if not isinstance(document.get("diagnosis"), dict):
        return document
    revised = dict(document)
    diagnosis = hypotheses_from(document.get("diagnosis"), evidence)
    revised["diagnosis"] = diagnosis.as_dict()
    if diagnosis.top is not None and diagnosis.status == "diagnosed":
        revised["confidence"] = diagnosis.top.confidence
    else:
        revised["confidence"] = min(float(document.get("confidence") or 0), INSUFFICIENT_CAP)
    return revised
