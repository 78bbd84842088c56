"""The postmortem document both writers produce, and its JSON Schema (Claude's output format)."""

import json
from pathlib import Path

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("postmortem.schema.json")
SCHEMA: dict = json.loads(SCHEMA_PATH.read_text())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

TEXT_FIELDS = [
    "summary",
    "impact",
    "contributing_factors",
    "root_cause",
    "went_well",
    "to_improve",
    "lessons",
]


def document_errors(document: object) -> list[str]:
    """Every way `document` breaks the schema, with its path; empty when valid."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def five_whys_markdown(whys: list[dict]) -> str:
    return "\n".join(f"{i}. **{w['question']}** {w['answer']}" for i, w in enumerate(whys, 1))
