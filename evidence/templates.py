"""Log lines mined into templates, Drain style: counts, first seen, new against a baseline.

Drain (He et al., ICWS 2017; the `drain3` package) groups lines by token count and
leading tokens, then joins a line to the most similar template when enough tokens
agree, turning the tokens that differ into `<*>`. This is that algorithm with a fixed,
small depth, kept here so templates need no extra dependency; variables (numbers,
ids, addresses, times) are masked first, as drain3's masking does.
"""

import re
from dataclasses import dataclass, field

SIMILARITY = 0.5
MAX_TEMPLATES = 200
WILDCARD = "<*>"

_MASKS = [
    re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"),
    re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"),
    re.compile(r"\b0x[0-9a-fA-F]+\b"),
    re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"),
    re.compile(r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?:ms|s|m|h|%|b|kb|mb|gb)?\b", re.IGNORECASE),
]


def _tokens(line: str) -> list[str]:
    for mask in _MASKS:
        line = mask.sub(WILDCARD, line)
    return line.split()[:60]


@dataclass
class Template:
    tokens: list[str]
    count: int = 0
    baseline_count: int = 0
    first_seen: float | None = None
    sample: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def similarity(self, tokens: list[str]) -> float:
        same = sum(1 for a, b in zip(self.tokens, tokens, strict=True) if a in (b, WILDCARD))
        return same / max(len(tokens), 1)

    def absorb(self, tokens: list[str]) -> None:
        self.tokens = [a if a == b else WILDCARD for a, b in zip(self.tokens, tokens, strict=True)]


class TemplateMiner:
    def __init__(self) -> None:
        self._groups: dict[tuple[int, str], list[Template]] = {}

    def add(self, line: str, *, when: float, baseline: bool) -> Template | None:
        tokens = _tokens(line)
        if not tokens:
            return None
        # The first token leads the tree unless it is a variable (Drain's depth-2 prefix).
        lead = tokens[0] if tokens[0] != WILDCARD else WILDCARD
        group = self._groups.setdefault((len(tokens), lead), [])
        best = max(group, key=lambda t: t.similarity(tokens), default=None)
        if best is None or best.similarity(tokens) < SIMILARITY:
            if sum(len(g) for g in self._groups.values()) >= MAX_TEMPLATES:
                return None
            best = Template(tokens=tokens)
            group.append(best)
        else:
            best.absorb(tokens)
        if baseline:
            best.baseline_count += 1
        else:
            best.count += 1
            if best.first_seen is None or when < best.first_seen:
                best.first_seen = when
            if not best.sample:
                best.sample = line[:300]
        return best

    def templates(self) -> list[Template]:
        return [t for group in self._groups.values() for t in group]


def mine(lines: list[tuple[float, str]], *, baseline_before: float) -> list[dict]:
    """Templates of the lines at or after `baseline_before`, most frequent first; each
    says whether it was absent from the lines before (the baseline window)."""
    miner = TemplateMiner()
    for when, line in sorted(lines):
        miner.add(line, when=when, baseline=when < baseline_before)
    found = [t for t in miner.templates() if t.count]
    found.sort(key=lambda t: (-t.count, t.first_seen or 0))
    return [
        {
            "template": t.text,
            "count": t.count,
            "baseline_count": t.baseline_count,
            "first_seen": t.first_seen,
            "new": t.baseline_count == 0,
            "sample": t.sample,
        }
        for t in found
    ]
