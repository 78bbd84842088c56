"""Parameter schema pieces shared by the action families, and the connector-side checks.

JSON Schema patterns are evaluated with `re.search`, where `$` also matches just
before a trailing newline; `$(?!\\n)` closes that gap ("users\\n" is refused).
Connectors check identifiers again with `re.fullmatch` (defence in depth).
"""

import re

from executor.results import StepBlocked

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$(?!\n)"
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _any_case(text: str) -> str:
    """`text` as a regex matching it in any letter case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


# PostgreSQL reserves the pg_ prefix for its system schemas (CREATE SCHEMA refuses
# it) and names every system catalog table pg_*; SQLite reserves sqlite_ for its
# internal tables. A runbook's table parameter never names either.
_RESERVED_TABLE = f"(?:{_any_case('pg_')}|{_any_case('sqlite_')})"
_SYSTEM_SCHEMA = f"(?:{_any_case('pg_')}|{_any_case('information_schema')}$)"
_RESERVED_TABLE_RE = re.compile(r"(?:pg_|sqlite_)", re.IGNORECASE)
_SYSTEM_SCHEMA_RE = re.compile(r"pg_|information_schema$", re.IGNORECASE)

IDENTIFIER = {
    "type": "string",
    "pattern": IDENTIFIER_PATTERN,
    "description": "A plain SQL identifier (letters, digits, underscore).",
}
TABLE_NAME = {
    "type": "string",
    "pattern": f"^(?!{_RESERVED_TABLE}){IDENTIFIER_PATTERN[1:]}",
    "description": "A plain SQL identifier; not a system catalog (pg_*, sqlite_*).",
}
SCHEMA_NAME = {
    "type": "string",
    "pattern": f"^(?!{_SYSTEM_SCHEMA}){IDENTIFIER_PATTERN[1:]}",
    "description": "Schema name; default: the target's search path (PostgreSQL). "
    "Never pg_* or information_schema.",
}
TABLE_PARAMS = {
    "type": "object",
    "required": ["table"],
    "properties": {"table": TABLE_NAME, "schema": SCHEMA_NAME},
}


def check_identifier(value: object, what: str = "identifier") -> str:
    """`value` if it is a plain identifier, else StepBlocked (never echoes more than 80 chars)."""
    if not isinstance(value, str) or not _IDENTIFIER_RE.fullmatch(value):
        shown = repr(value)[:80]
        raise StepBlocked(f"refused {what} {shown}: not a plain identifier")
    return value


def is_system_schema(name: str) -> bool:
    """pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N, information_schema, in any case."""
    return bool(_SYSTEM_SCHEMA_RE.match(name))


def check_table_name(value: object) -> str:
    """A plain identifier that does not name a system catalog table; else StepBlocked."""
    name = check_identifier(value, "table")
    if _RESERVED_TABLE_RE.match(name):
        raise StepBlocked(f"refused table {name}: pg_* and sqlite_* name system catalogs")
    return name


def check_schema_name(value: object) -> str:
    """A plain identifier that is not a system schema; else StepBlocked."""
    name = check_identifier(value, "schema")
    if is_system_schema(name):
        raise StepBlocked(f"refused schema {name}: a system schema, not the target's own")
    return name
