"""Claude as the runbook author, through the official `anthropic` SDK.

One request with structured output (the contract typed per action); if the answer
is invalid, one repair request that lists every error with its JSON path. Any
failure falls back to the offline planner with a note saying why. The SDK does
the retrying (rate limits, 5xx, timeouts) with its own backoff.

Tests replace only the HTTP transport: set `http_client_factory` to return an
`httpx2.Client` (the SDK's HTTP library) built on a mock transport; see
`testing/fakes/anthropic.py`.
"""

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
from django.conf import settings

from incidents import jsonsafe
from incidents.storable import clean_payload
from runbooks.choices import RunbookAuthor
from runbooks.validation import ValidationIssue

from .diagnosis import rescore_document
from .offer import offer
from .prompt import repair_message, system_blocks, user_message
from .results import GenerationResult, Usage, check_document, offline_result

logger = logging.getLogger(__name__)

# The test seam: return an httpx2.Client (e.g. on a MockTransport) to replace the
# network; None means the SDK's own default client.
http_client_factory: Callable[[], httpx2.Client | None] = lambda: None  # noqa: E731


class ClaudeFailed(Exception):
    """Claude gave no usable answer; the message is the note for the timeline."""


# One client per API key, base URL and settings (and per process): building one costs an
# HTTP client with a fresh SSL context, and a kept client keeps its connections warm.
_CLIENTS: OrderedDict[tuple, anthropic.Anthropic] = OrderedDict()
_CLIENTS_KEPT = 4
_clients_lock = threading.Lock()


def client() -> anthropic.Anthropic:
    """The Anthropic client for the current settings, built once and then reused."""
    key = (
        os.getpid(),  # a forked worker builds its own rather than sharing sockets
        settings.ANTHROPIC_API_KEY,
        settings.ANTHROPIC_BASE_URL,
        settings.ANTHROPIC_TIMEOUT,
        settings.ANTHROPIC_MAX_RETRIES,
        http_client_factory,
    )
    with _clients_lock:
        found = _CLIENTS.get(key)
        if found is not None:
            _CLIENTS.move_to_end(key)
            return found
    built = build_client()
    with _clients_lock:
        found = _CLIENTS.setdefault(key, built)
        _CLIENTS.move_to_end(key)
        while len(_CLIENTS) > _CLIENTS_KEPT:
            _CLIENTS.popitem(last=False)  # a rotated key's client: its sockets close when collected
    return found


def build_client() -> anthropic.Anthropic:
    kwargs: dict[str, Any] = {
        "api_key": settings.ANTHROPIC_API_KEY,
        "timeout": settings.ANTHROPIC_TIMEOUT,
        "max_retries": settings.ANTHROPIC_MAX_RETRIES,
    }
    if settings.ANTHROPIC_BASE_URL:
        kwargs["base_url"] = settings.ANTHROPIC_BASE_URL
    http_client = http_client_factory()
    if http_client is not None:
        kwargs["http_client"] = http_client
    return anthropic.Anthropic(**kwargs)


def _attempts(request: httpx2.Request | None) -> int:
    """How many HTTP attempts the SDK made, from the retry count it sends on each."""
    try:
        return int(request.headers.get("x-stainless-retry-count", "0")) + 1 if request else 1
    except ValueError:
        return 1


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _failure_note(err: anthropic.AnthropicError) -> str:
    """A readable reason for the timeline; never the request, its headers or the key."""
    if isinstance(err, anthropic.RateLimitError):
        return f"Claude rate-limited (429) {_times(_attempts(err.response.request))}"
    if isinstance(err, anthropic.APIStatusError):
        n = _attempts(err.response.request)
        if err.status_code >= 500:
            return f"Claude returned server errors ({err.status_code}) {_times(n)}"
        if err.status_code in (401, 403):
            return f"Claude refused the API key ({err.status_code})"
        detail = (err.api_message or "")[:200] if err.status_code == 400 else ""
        return f"Claude request failed ({err.status_code}{': ' + detail if detail else ''})"
    if isinstance(err, anthropic.APITimeoutError):
        n = _attempts(err.request)
        return f"Claude timed out (after {settings.ANTHROPIC_TIMEOUT:g}s, {_times(n)})"
    if isinstance(err, anthropic.APIConnectionError):
        return f"Could not connect to Claude ({_times(_attempts(err.request))})"
    return f"Claude call failed ({type(err).__name__})"


def _usage(message: Any) -> Usage:
    u = message.usage
    return Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_read_tokens=u.cache_read_input_tokens or 0,
        cache_write_tokens=u.cache_creation_input_tokens or 0,
    )


def _text(message: Any) -> str:
    return "".join(b.text for b in message.content if getattr(b, "type", "") == "text")


def _parse(text: str) -> tuple[Any, str]:
    """(document, parse error). Tolerates a Markdown fence around the JSON."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        # Model text: cleaned of what PostgreSQL and the artifact's UTF-8 cannot hold.
        return clean_payload(jsonsafe.loads(body)), ""
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except jsonsafe.NonFiniteNumber as exc:
        # NaN would pass the schema's bounds and cannot be stored: an invalid answer.
        return None, str(exc)
    except (ValueError, RecursionError) as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:100]}"


class _Session:
    """One generation: the conversation so far, usage, notes."""

    def __init__(self, incident: Any, context: dict | None) -> None:
        self.client = client()
        self.system = system_blocks(getattr(incident, "service", "") or "")
        self.schema = offer().output_schema(service=getattr(incident, "service", "") or "")
        self.messages: list[dict] = [user_message(incident, context)]
        self.usage = Usage()
        self.model_id = ""
        self.retries = 0

    def ask(self) -> str:
        """One Messages API call; the answer's text, or ClaudeFailed."""
        try:
            raw = self.client.messages.with_raw_response.create(
                model=settings.ANTHROPIC_MODEL,
                max_tokens=settings.ANTHROPIC_MAX_TOKENS,
                system=self.system,
                messages=self.messages,
                output_config={"format": {"type": "json_schema", "schema": self.schema}},
            )
            message = raw.parse()
        except anthropic.AnthropicError as err:
            raise ClaudeFailed(_failure_note(err)) from err
        self.retries += raw.retries_taken
        self.usage.add(_usage(message))
        self.model_id = message.model or self.model_id
        if message.stop_reason == "refusal":
            raise ClaudeFailed("Claude declined to write this runbook (stop_reason refusal)")
        if message.stop_reason == "max_tokens":
            raise ClaudeFailed(
                f"Claude's answer was cut off at max_tokens ({settings.ANTHROPIC_MAX_TOKENS})"
            )
        text = _text(message)
        self.messages.append({"role": "assistant", "content": text or "(empty)"})
        return text


def _summary(errors: list[ValidationIssue], parse_error: str) -> str:
    n = len(errors) + (1 if parse_error else 0)
    first = f"not JSON: {parse_error}" if parse_error else str(errors[0]) if errors else ""
    return f"{n} error{'s' if n != 1 else ''}" + (f", first {first}" if first else "")


def generate_with_claude(*, incident: Any, context: dict | None = None) -> GenerationResult:
    notes: list[str] = []
    try:
        session = _Session(incident, context)
    except anthropic.AnthropicError as err:
        return offline_result(
            incident=incident,
            context=context,
            notes=[f"{_failure_note(err)}; fell back to the offline planner"],
        )
    except Exception:  # e.g. a registry schema the output-schema builder cannot handle
        logger.exception("could not prepare the Claude request")
        return offline_result(
            incident=incident,
            context=context,
            notes=["Could not prepare the Claude request; fell back to the offline planner"],
        )

    def fallback(reason: str) -> GenerationResult:
        return offline_result(
            incident=incident,
            context=context,
            notes=[*notes, f"{reason}; fell back to the offline planner"],
            usage=session.usage,
        )

    def claude_result(document: dict, steps: list[ValidationIssue]) -> GenerationResult:
        evidence = (context or {}).get("evidence")
        if evidence is not None:
            document = rescore_document(document, evidence)
        if session.retries:
            retries = f"{session.retries} retr{'y' if session.retries == 1 else 'ies'}"
            notes.insert(0, f"Claude answered after {retries} by the SDK")
        return GenerationResult(
            document=document,
            author=RunbookAuthor.CLAUDE.value,
            model_id=session.model_id,
            usage=session.usage,
            validation_errors=[],
            notes=notes,
            step_errors=steps,
        )

    service = getattr(incident, "service", "") or ""
    try:
        document, parse_error = _parse(session.ask())
    except ClaudeFailed as failed:
        return fallback(str(failed))
    except Exception:  # a bug must not cost the incident its runbook
        logger.exception("Claude generation failed unexpectedly")
        return fallback("Claude generation failed unexpectedly")
    contract, steps = check_document(document, service) if not parse_error else ([], [])
    if not parse_error and not contract and not steps:
        return claude_result(document, [])

    first = _summary(contract + steps, parse_error)
    session.messages.append(repair_message(contract + steps, parse_error=parse_error))
    try:
        repaired, parse_error2 = _parse(session.ask())
    except ClaudeFailed as failed:
        if not parse_error and not contract:
            # The first answer met the contract; keep it, the executor blocks the bad steps.
            notes.append(
                f"Claude's first answer had {len(steps)} step errors; the repair call failed "
                f"({failed}); kept the first answer"
            )
            return claude_result(document, steps)
        notes.append(f"Claude's first answer was invalid ({first})")
        return fallback(f"the repair call failed: {failed}")
    except Exception:
        logger.exception("Claude repair failed unexpectedly")
        return fallback("Claude's repair call failed unexpectedly")

    contract2, steps2 = check_document(repaired, service) if not parse_error2 else ([], [])
    if parse_error2 or contract2:
        notes.append(f"Claude's first answer was invalid ({first})")
        return fallback(
            f"the repaired answer was still invalid ({_summary(contract2, parse_error2)})"
        )
    if steps2:
        notes.append(
            f"Claude's first answer was invalid ({first}); the repaired answer still has "
            f"{len(steps2)} step errors, which the executor will block"
        )
    else:
        notes.append(f"Claude's first answer was invalid ({first}); repaired on the second call")
    return claude_result(repaired, steps2)
