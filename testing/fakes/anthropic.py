"""Claude over a fake HTTP transport: the real `anthropic` SDK, recorded API answers.

Usage::

    from testing.fakes.anthropic import error, fake_claude, recorded

    def test_something(settings):
        settings.ANTHROPIC_API_KEY = "test-key"
        with fake_claude([error(429), recorded("athena_valid")]) as fake:
            result = generate_runbook_document(incident=incident)
        assert len(fake.requests) == 2
        assert fake.bodies[0]["model"] == settings.ANTHROPIC_MODEL

`fake_claude(responses)` installs an `httpx2.MockTransport` through the seam
`runbooks.generation.claude.http_client_factory` (the SDK uses httpx2, not
httpx), so everything above the transport is real: request building, retries
with their backoff, error mapping, response parsing. Each HTTP attempt takes the
next item of `responses`:

- an `httpx2.Response`: returned as is (see `recorded`, `message`, `error`);
- a dict: returned as a 200 JSON body (a Messages API message);
- an exception instance: raised by the transport (e.g. `httpx2.ReadTimeout("...")`,
  which the SDK reports as APITimeoutError);
- a callable `(request) -> Response`: called, its result returned (it may raise).

When the list runs out, the transport answers a non-retryable 400 and counts it
in `fake.overrun`, so a test that makes more calls than planned fails visibly.
Error answers carry `retry-after-ms: 1` so the SDK's retries do not sleep for
real (a zero retry-after is ignored by the SDK, which then backs off 0.5 s+).

`fake.requests` holds the `httpx2.Request`s, `fake.bodies` their JSON bodies.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx2

from runbooks.generation import claude as claude_module
from testing.services import ROOT

# Answers recorded from the Messages API, kept beside the runbooks tests that use them.
RECORDED = ROOT / "runbooks" / "tests" / "recorded"

ResponseItem = httpx2.Response | dict | BaseException | Callable[[httpx2.Request], httpx2.Response]


def recorded_body(name: str) -> dict:
    """The JSON body of a recorded response, `runbooks/tests/recorded/<name>.json`."""
    return json.loads((RECORDED / f"{name}.json").read_text())


def recorded_document(name: str) -> dict:
    """The runbook inside a recorded message: its first text block, parsed."""
    return json.loads(recorded_body(name)["content"][0]["text"])


def recorded(name: str, status: int = 200, headers: dict | None = None) -> httpx2.Response:
    return httpx2.Response(
        status,
        json=recorded_body(name),
        headers={"request-id": f"req_{name}", **(headers or {})},
    )


def message(
    document: dict | str,
    *,
    model: str = "claude-sonnet-4-6",
    stop_reason: str = "end_turn",
    usage: tuple[int, int, int, int] = (400, 0, 3000, 600),
) -> httpx2.Response:
    """A 200 Messages API answer whose text block is `document` (JSON-encoded if a dict).

    usage: (input, cache_creation_input, cache_read_input, output) tokens.
    """
    text = document if isinstance(document, str) else json.dumps(document)
    return httpx2.Response(
        200,
        json={
            "id": "msg_01Fake0000000000000000",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage[0],
                "cache_creation_input_tokens": usage[1],
                "cache_read_input_tokens": usage[2],
                "output_tokens": usage[3],
            },
        },
    )


_ERROR_BODIES = {429: "rate_limit_429", 500: "api_error_500", 529: "overloaded_529"}


def error(status: int, *, retry_after_ms: int = 1) -> httpx2.Response:
    """A recorded API error answer (429, 500, 529) with fast retry headers."""
    body = recorded_body(_ERROR_BODIES.get(status, "api_error_500"))
    return httpx2.Response(
        status,
        json=body,
        headers={
            "retry-after": "0",
            "retry-after-ms": str(retry_after_ms),
            "request-id": body.get("request_id", "req_fake"),
        },
    )


class FakeClaude:
    def __init__(self, responses: list[ResponseItem]) -> None:
        self._queue = list(responses)
        self.requests: list[httpx2.Request] = []
        self.bodies: list[dict] = []
        self.overrun = 0

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        try:
            self.bodies.append(json.loads(request.content or b"{}"))
        except ValueError:
            self.bodies.append({})
        if not self._queue:
            self.overrun += 1
            return httpx2.Response(
                400,
                json={
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "fake_claude: no recorded response left",
                    },
                },
                headers={"x-should-retry": "false"},
            )
        item = self._queue.pop(0)
        if isinstance(item, BaseException):
            if isinstance(item, httpx2.RequestError):
                item.request = request
            raise item
        if isinstance(item, httpx2.Response):
            # A fresh copy: the same recorded answer may be queued more than once.
            item.read()
            return httpx2.Response(item.status_code, headers=item.headers, content=item.content)
        if isinstance(item, dict):
            return httpx2.Response(200, json=item)
        return item(request)

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def system_text(self, index: int = 0) -> str:
        return "".join(block.get("text", "") for block in self.bodies[index].get("system", []))

    def message_texts(self, index: int = 0) -> list[str]:
        out = []
        for m in self.bodies[index].get("messages", []):
            content: Any = m.get("content")
            if isinstance(content, list):
                content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
            out.append(content)
        return out


@contextmanager
def fake_claude(responses: list[ResponseItem]) -> Iterator[FakeClaude]:
    """Route the SDK's HTTP through a mock transport answering `responses` in order."""
    fake = FakeClaude(responses)
    previous = claude_module.http_client_factory
    claude_module.http_client_factory = lambda: anthropic.DefaultHttpxClient(
        transport=httpx2.MockTransport(fake.handle)
    )
    try:
        yield fake
    finally:
        claude_module.http_client_factory = previous
