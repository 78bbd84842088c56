"""The blameless check: a postmortem names systems and decisions as causes, never people.

A sentence that names someone involved in the incident together with causal or
blaming words is flagged; so is blaming wording on its own ("X's fault").
"""

import re
from collections.abc import Iterable

CAUSAL = re.compile(
    r"\b(caus\w*|fault|blame\w*|mistake\w*|error by|forgot|careless\w*|negligen\w*|"
    r"because of|due to|screwed up|messed up|broke)\b",
    re.IGNORECASE,
)
BLAMING = re.compile(r"\b\w+'s fault\b|\bhuman error\b|\bblame\b", re.IGNORECASE)
SENTENCE = re.compile(r"(?<=[.!?\n])\s+")


def blameless_issues(texts: Iterable[str], people: Iterable[str]) -> list[str]:
    """Sentences that name a person as a cause or blame someone; empty when the text is fine."""
    names = sorted({p.strip() for p in people if p and len(p.strip()) >= 2}, key=len, reverse=True)
    name_re = (
        re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)
        if names
        else None
    )
    issues: list[str] = []
    for text in texts:
        for sentence in SENTENCE.split(text or ""):
            sentence = sentence.strip()
            if not sentence:
                continue
            named = name_re.search(sentence) if name_re else None
            if (named and CAUSAL.search(sentence)) or BLAMING.search(sentence):
                who = f" (names {named.group(1)})" if named else ""
                issues.append(f"{sentence[:200]}{who}")
    return issues
