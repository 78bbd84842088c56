"""What a generation returns, and the offline planner's result (used alone or as fallback)."""

from dataclasses import dataclass, field
from typing import Any

from runbooks.choices import RunbookAuthor
from runbooks.validation import ValidationIssue, validate_runbook

from .offer import offer
from .offline import plan_offline

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
    return validate_runbook(document), offer().step_issues(document, service)


def offline_result(
    *, incident: Any, context: dict | None, notes: list[str], usage: Usage | None = None
) -> GenerationResult:
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
