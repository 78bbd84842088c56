"""Runbook generation: Claude when an API key is configured, the offline planner otherwise.

`generate_runbook_document` never raises for Claude's failures: rate limits, server
errors, timeouts, refusals and answers that stay invalid all fall back to the
deterministic offline planner, and `notes` says why.

Two kinds of problems are reported separately:
- `validation_errors`: the document breaks the JSON Schema contract. The caller
  must not store it as a ready runbook.
- `step_errors`: the document passes the contract but some steps would be blocked
  by the executor (unknown action, wrong kind, bad params, unknown target). The
  executor re-checks and blocks them itself; they are listed so the caller can
  show or record them.
"""

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from runbooks.choices import RunbookAuthor
from runbooks.validation import ValidationIssue

OFFLINE_MODEL_ID = "offline-planner-v1"


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens


@dataclass
class GenerationResult:
    document: dict | None  # the runbook as produced; valid unless validation_errors
    author: str  # RunbookAuthor value: "claude" or "offline"
    model_id: str  # the model Claude reported, OFFLINE_MODEL_ID for the offline planner
    usage: Usage  # summed over all Claude calls, including a repair round and failed attempts
    validation_errors: list[ValidationIssue] = field(default_factory=list)  # contract only
    notes: list[str] = field(default_factory=list)  # readable lines for the timeline
    step_errors: list[ValidationIssue] = field(default_factory=list)  # registry problems


def check_document(
    document: Any, service: str = ""
) -> tuple[list[ValidationIssue], list[ValidationIssue]]:
    """(contract errors, step errors) of a candidate runbook for `service`."""
    from runbooks.validation import validate_runbook

    from .catalog import step_issues

    return validate_runbook(document), step_issues(document, service)


def offline_result(
    *, incident: Any, context: dict | None, notes: list[str], usage: Usage | None = None
) -> GenerationResult:
    from .offline import plan_offline

    document = plan_offline(incident=incident, context=context)
    contract, steps = check_document(document, getattr(incident, "service", "") or "")
    return GenerationResult(
        document=document,
        author=RunbookAuthor.OFFLINE.value,
        model_id=OFFLINE_MODEL_ID,
        usage=usage or Usage(),
        validation_errors=contract,
        notes=notes,
        step_errors=steps,
    )


def generate_runbook_document(*, incident: Any, context: dict | None = None) -> GenerationResult:
    """Write a runbook for `incident`; see the module docstring for the contract."""
    if not settings.ANTHROPIC_API_KEY:
        return offline_result(
            incident=incident,
            context=context,
            notes=["No Anthropic API key is configured; the offline planner wrote this runbook"],
        )
    from .claude import generate_with_claude

    return generate_with_claude(incident=incident, context=context)
