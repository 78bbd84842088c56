"""Parameter schema pieces shared by the action families, and the connector-side checks.

JSON Schema patterns are evaluated with `re.search`, where `$` also matches just
before a trailing newline; `$(?!\\n)` closes that gap ("users\\n" is refused).
Connectors check identifiers again with `re.fullmatch` (defence in depth).
"""

import re

from executor.results import StepBlocked

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$(?!\n)"
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

IDENTIFIER = {
    "type": "string",
    "pattern": IDENTIFIER_PATTERN,
    "description": "A plain SQL identifier (letters, digits, underscore).",
}
TABLE_PARAMS = {
    "type": "object",
    "required": ["table"],
    "properties": {
        "table": IDENTIFIER,
        "schema": {**IDENTIFIER, "description": "Schema name; default public (PostgreSQL)."},
    },
}


def check_identifier(value: object, what: str = "identifier") -> str:
    """`value` if it is a plain identifier, else StepBlocked (never echoes more than 80 chars)."""
    if not isinstance(value, str) or not _IDENTIFIER_RE.fullmatch(value):
        shown = repr(value)[:80]
        raise StepBlocked(f"refused {what} {shown}: not a plain identifier")
    return value
