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

Claude is asked at most ANTHROPIC_CALLS_PER_MINUTE times a minute across all workers
(`model_call_take`, budget.py); past the budget the offline planner answers, and `notes`
says so.
"""

from typing import Any

from django.conf import settings

from evidence.selectors import evidence_items, latest_set

from .budget import model_call_take
from .claude import generate_with_claude
from .results import (
    OFFLINE_MODEL_ID,
    GenerationResult,
    Usage,
    check_document,
    offline_result,
)

__all__ = [
    "OFFLINE_MODEL_ID",
    "GenerationResult",
    "Usage",
    "check_document",
    "generate_runbook_document",
    "model_call_take",
    "offline_result",
]


def generate_runbook_document(*, incident: Any, context: dict | None = None) -> GenerationResult:
    """Write a runbook for `incident`; see the module docstring for the contract."""
    if context is not None and "evidence" not in context and getattr(incident, "pk", None):
        # What the context stage gathered: the diagnosis must cite it.
        gathered = latest_set(incident.pk)
        if gathered is not None:
            context = {**context, "evidence": evidence_items(gathered)}
    if not settings.ANTHROPIC_API_KEY:
        return offline_result(
            incident=incident,
            context=context,
            notes=["No Anthropic API key is configured; the offline planner wrote this runbook"],
        )
    if not model_call_take():
        budget = settings.ANTHROPIC_CALLS_PER_MINUTE
        return offline_result(
            incident=incident,
            context=context,
            notes=[
                f"The budget of {budget} Claude generations a minute is spent; "
                "the offline planner wrote this runbook"
            ],
        )
    return generate_with_claude(incident=incident, context=context)
