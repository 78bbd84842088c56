"""Parameter schema pieces shared by the action families."""

IDENTIFIER = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
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
