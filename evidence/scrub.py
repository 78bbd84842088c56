"""Secrets out of untrusted text (log lines, labels) before it is stored or shown.

The executor's target scrubber removes the secrets it knows (a target's token, its
URL's password); this removes the shapes a secret has in a log line that no target
knows: credentials in key=value pairs, bearer tokens, cloud keys, JWTs, URLs with a
password.
"""

import re
from collections.abc import Callable

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # First: "Authorization: Bearer x" must lose x, not just the word Bearer.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
            r"client[_-]?secret|authorization|auth|session|cookie)(\"?\s*[:=]\s*\"?)([^\s\"',;&]+)"
        ),
        r"\1\2***",
    ),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), "***"),
    (
        re.compile(
            r"\b(xox[abprs]-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})"
        ),
        "***",
    ),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1***@"),
]

# Extra scrubbers installed by whoever knows more secrets (the executor's targets).
_extra: list[Callable[[str], str]] = []


def install_scrubber(scrub: Callable[[str], str]) -> None:
    if scrub not in _extra:
        _extra.append(scrub)


def scrub_text(text: str) -> str:
    for scrub in _extra:
        text = scrub(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_labels(labels: dict) -> dict[str, str]:
    return {scrub_text(str(k)): scrub_text(str(v)) for k, v in labels.items()}
