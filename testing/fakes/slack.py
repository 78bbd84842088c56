"""A local server that answers like Slack.

The server checks what Slack checks (method, path, content type, token, JSON shape)
and answers with Slack's documented responses: an incoming webhook says `ok` or an
error word (`no_service`, `invalid_payload`) with a 4xx; the Web API answers 200
with `{"ok": false, "error": ...}`; both send 429 with Retry-After when rate limited.
A test can hold every answer (`hold`) until it sets `release`: the post is recorded
when it arrives, the answer waits.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from testing.servers import handler_server

WEBHOOK_PATH = "/services/T0001/B0001/s3cr3tw3bh00k"
TOKEN = "xoxb-test-token"


@dataclass
class FakeSlack:
    base: str
    # What to answer next, in order; "ok" once the list is empty.
    script: list[tuple] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    hold: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def webhook_url(self) -> str:
        return self.base + WEBHOOK_PATH

    @property
    def posts(self) -> list[dict]:
        return [r["body"] for r in self.received]

    def texts(self) -> list[str]:
        return [p.get("text", "") for p in self.posts]


def _valid_message(body: dict) -> bool:
    blocks = body.get("blocks")
    return (
        isinstance(body.get("text"), str)
        and isinstance(blocks, list)
        and all(b.get("type") == "section" and b["text"]["type"] == "mrkdwn" for b in blocks)
    )


class SlackHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        fake.arrived.set()
        if fake.hold:
            fake.release.wait(120)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: int, word: str, headers: dict | None = None) -> None:
        self._answer(status, word.encode(), "text/html", headers)

    def _json(self, payload: dict, status: int = 200, headers: dict | None = None) -> None:
        self._answer(status, json.dumps(payload).encode(), "application/json", headers)

    def do_GET(self) -> None:
        self._text(405, "method_not_allowed")

    def do_POST(self) -> None:
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        fake.times.append(time.monotonic())
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ctype = self.headers.get("Content-Type", "")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fake.received.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "ctype": ctype,
                "body": body,
            }
        )
        step = fake.script.pop(0) if fake.script else ("ok",)
        if self.path == WEBHOOK_PATH:
            if not ctype.startswith("application/json") or not isinstance(body, dict):
                return self._text(400, "invalid_payload")
            if not _valid_message(body):
                return self._text(400, "invalid_blocks")
            if step[0] == "rate":
                return self._text(429, "rate_limited", {"Retry-After": str(step[1])})
            if step[0] == "no_service":
                return self._text(404, "no_service")
            return self._text(200, "ok")
        if self.path == "/api/chat.postMessage":
            if step[0] == "rate":
                return self._json(
                    {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(step[1])}
                )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}" or step[0] == "invalid_auth":
                return self._json({"ok": False, "error": "invalid_auth"})
            if not ctype.startswith("application/json") or not isinstance(body, dict):
                return self._json({"ok": False, "error": "invalid_json"})
            if not body.get("channel"):
                return self._json({"ok": False, "error": "channel_not_found"})
            if not _valid_message(body):
                return self._json({"ok": False, "error": "invalid_blocks"})
            return self._json(
                {
                    "ok": True,
                    "channel": "C0123456789",
                    "ts": "1700000000.000100",
                    "message": {"type": "message", "text": body["text"]},
                }
            )
        return self._text(404, "no_service")


@contextmanager
def slack_server() -> Iterator[FakeSlack]:
    """The fake Slack on a free loopback port."""
    with handler_server(SlackHandler) as (httpd, base):
        httpd.fake = fake = FakeSlack(base=base)
        yield fake
