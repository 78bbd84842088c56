"""Claude as the postmortem writer, with structured output against the postmortem schema.

Uses the runbook author's kept SDK client (its test seam included). Any failure,
or an answer that breaks the schema, falls back to the offline writer with a note.
"""

import json
import logging

import anthropic
from django.conf import settings

from runbooks.generation.claude import client as claude_client

from .document import SCHEMA, document_errors

logger = logging.getLogger(__name__)

SYSTEM = (
    "You write blameless incident postmortems for an operations team. Use only the facts "
    "given. Name systems, processes and decisions as causes, never people. Write each "
    "section in concise Markdown. Suggest concrete follow-up action items."
)


class ClaudeFailed(Exception):
    """Claude gave no usable answer; the message says why, for the timeline."""


def write(facts: dict) -> tuple[dict, str]:
    """(document, model id), or ClaudeFailed."""
    client = claude_client()
    try:
        message = client.messages.create(
            model=settings.ANTHROPIC_MODEL,
            max_tokens=settings.ANTHROPIC_MAX_TOKENS,
            system=SYSTEM,
            messages=[
                {
                    "role": "user",
                    "content": "Write the postmortem of this incident. Facts as JSON:\n"
                    + json.dumps(facts, default=str),
                }
            ],
            output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
        )
    except anthropic.AnthropicError as err:
        raise ClaudeFailed(f"Claude call failed ({type(err).__name__})") from err
    if message.stop_reason != "end_turn":
        raise ClaudeFailed(f"Claude stopped early ({message.stop_reason})")
    text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ClaudeFailed("Claude's answer was not JSON") from exc
    errors = document_errors(document)
    if errors:
        raise ClaudeFailed(
            f"Claude's answer broke the schema ({len(errors)} errors, first {errors[0]})"
        )
    return document, message.model or settings.ANTHROPIC_MODEL
