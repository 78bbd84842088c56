"""What the incident text tells the offline planner, extracted once.

Identifiers taken from the text (a table name, a cache key prefix, a service
name) are kept only when they match the strict patterns the action schemas
demand; otherwise they stay empty and the steps that need them are left out.
"""

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from .offered import configured_target_kinds
from .vocabulary import KNOWN_SYSTEMS, NEGATORS, NOT_TABLES

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
CACHE_KEY = re.compile(r"^[A-Za-z0-9_.\-]+:[A-Za-z0-9:_.\-]*\*?$")


@dataclass
class Facts:
    """What the text tells us, extracted once."""

    text: str
    words: list[str]
    service: str  # safe service name or ""
    system: str
    table: str  # safe identifier or ""
    seconds: int  # a duration mentioned in the text, 0 if none
    cache_pattern: str  # explicit key pattern from the text, or ""
    mentions: set[str] = field(default_factory=set)  # matched keywords of the chosen scenario
    title: str = ""
    severity: str = ""
    target_kinds: frozenset[str] = frozenset()


def tokens(text: str) -> list[str]:
    """The lower-cased words of `text`, as keyword matching sees them."""
    return re.findall(r"[a-z0-9_+\-]+", text.lower())


def matches(words: list[str], phrase: str) -> int:
    """Occurrences of `phrase` in `words`, not counting negated ones ("no recent deploys").

    A one-word phrase also matches its plural and verb forms ("deploys", "deployed")."""
    parts = phrase.split()
    if len(parts) == 1:
        forms = _forms(parts[0])
        found = [i for i, word in enumerate(words) if word in forms]
    else:
        n, first = len(parts), parts[0]
        found = [i for i, word in enumerate(words) if word == first and words[i : i + n] == parts]
    return sum(1 for i in found if not NEGATORS.intersection(words[max(0, i - 3) : i]))


@functools.lru_cache(maxsize=4096)
def _forms(stem: str) -> frozenset[str]:
    return frozenset((stem, stem + "s", stem + "es", stem + "ed", stem + "ing"))


def table_name(text: str) -> str:
    """The first table the text names, if it is a safe identifier; "" otherwise."""
    patterns = (
        r"\b(?:the|in|on|from|of|our|into)\s+[`\"']?([A-Za-z_][A-Za-z0-9_]*)[`\"']?\s+table\b",
        r"\btable\s+[`\"']?([A-Za-z_][A-Za-z0-9_]*)[`\"']?",
    )
    for pattern in patterns:
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            name = m.group(1)
            if IDENTIFIER.match(name) and name.lower() not in NOT_TABLES:
                return name
    return ""


def duration_seconds(text: str) -> int:
    """The first duration the text mentions, in seconds; 0 if none."""
    # "30 seconds", "30+ second", "30s", "5 min"; never "500s" (HTTP 500s) or "1.5s".
    m = re.search(
        r"(?<![\d.])(\d{1,5})(?:\s*\+?\s*(seconds?|secs?|minutes?|mins?)\b|\+?(s|m)\b)",
        text,
        flags=re.IGNORECASE,
    )
    if not m:
        return 0
    n, unit = int(m.group(1)), (m.group(2) or m.group(3)).lower()
    if unit == "s" and 100 <= n <= 599:
        return 0  # "500s" is a status-code class, not a duration
    return n * 60 if unit.startswith("m") else n


def cache_pattern(text: str) -> str:
    """The first cache key prefix in the text, as a pattern ending in "*"; "" if none."""
    for raw in text.split():
        token = raw.strip("`'\"()[]{}<>,;")
        token = token.rstrip(".")
        if token.lower().startswith(("http:", "https:")) or "://" in token:
            continue
        # A key prefix looks like "session:*" or "cart:v2:": a lone "Update:" is prose.
        keyish = token.endswith("*") or token.count(":") >= 2 or raw.startswith("`")
        if (
            keyish
            and CACHE_KEY.match(token)
            and not token.startswith((":", "*"))
            and len(token) <= 190
        ):
            return token if token.endswith("*") else token + "*"
    return ""


def affected_system(text: str, service: str, default: str) -> str:
    """The first known system the text names, else the service, else the scenario's default."""
    lowered = text.lower()
    found = [
        (m.start(), name)
        for name in KNOWN_SYSTEMS
        for m in [re.search(rf"\b{name}\b", lowered)]
        if m
    ]
    if found:
        name = min(found)[1]
        return "postgresql" if name == "postgres" else name
    return service or default


def target_kinds(context: dict | None) -> frozenset[str]:
    """The target kinds the generation context lists, else those configured."""
    targets = (context or {}).get("targets")
    if isinstance(targets, list) and targets:
        return frozenset(str(t.get("kind", "")) for t in targets if isinstance(t, dict))
    return configured_target_kinds()


def extract_facts(incident: Any, context: dict | None) -> Facts:
    """The facts of `incident`; `system` and `mentions` are filled once a scenario is chosen."""
    title = str(getattr(incident, "title", "") or "")
    description = str(getattr(incident, "description", "") or "")
    raw_service = str(getattr(incident, "service", "") or "").strip()
    service = raw_service if SERVICE_NAME.match(raw_service) else ""
    text = f"{title}\n{description}"
    return Facts(
        text=text,
        words=tokens(f"{text}\n{raw_service}"),
        service=service,
        system="",
        table=table_name(text),
        seconds=duration_seconds(text),
        cache_pattern=cache_pattern(text),
        title=title,
        severity=str(getattr(incident, "severity", "") or ""),
        target_kinds=target_kinds(context),
    )
