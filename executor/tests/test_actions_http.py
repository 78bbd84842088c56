"""http.health_check against a real HTTP server started on 127.0.0.1 for each test."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepTimeout
from executor.targets import ResolvedTarget
from testing.servers import handler_server
from testing.services import free_port

SPEC = REGISTRY["http.health_check"]


@dataclass
class Server:
    base: str
    port: int
    requests: list[dict] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        state.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if self.path in ("/healthz", "/healthz/"):
            self._send(200, b'{"status": "ok", "db": "up"}', {"Content-Type": "application/json"})
        elif self.path == "/healthz/db":
            self._send(503, b"database unavailable")
        elif self.path == "/healthz/lagging":
            threading.Event().wait(0.05)  # a server that takes 50 ms to answer
            self._send(200, b"ok")
        elif self.path == "/healthz/slow":
            state.release.wait(10)  # held until the test lets go, never a fixed delay
            self._send(200, b"late")
        elif self.path == "/healthz/same":
            self._send(302, b"", {"Location": "/healthz"})
        elif self.path == "/healthz/elsewhere":
            self._send(302, b"", {"Location": f"http://localhost:{state.port}/healthz"})
        elif self.path == "/healthz/big":
            self._send(200, b"A" * 1_000_000)
        elif self.path == "/healthz/private":
            ok = self.headers.get("Authorization") == "Bearer tok-123"
            self._send(200 if ok else 401, b"hello" if ok else b"no")
        else:
            self._send(404, b"not found")


@pytest.fixture
def server() -> Iterator[Server]:
    with handler_server(Handler) as (httpd, base):
        httpd.state = state = Server(base=base, port=httpd.server_address[1])
        yield state
        state.release.set()


def target(server: Server, path: str = "/healthz", **kw) -> ResolvedTarget:
    return ResolvedTarget("app", "http", server.base + path, **kw)


def check(params: dict, t: ResolvedTarget, seconds: float = 5.0):
    assert SPEC.validate_params(params) == []
    result = SPEC.run(params, t, time.monotonic() + seconds)
    json.dumps(result.data)
    return result


def test_healthy_endpoint_is_ok_with_status_latency_and_body(server):
    result = check({}, target(server))
    assert result.outcome == "ok"
    assert result.data["status"] == 200
    assert 0 < result.data["latency_ms"] < 5000
    assert '"db": "up"' in result.data["body_excerpt"]
    assert result.summary.startswith(f"GET {server.base}/healthz → 200 in ")
    assert server.requests == [{"path": "/healthz", "auth": None}]


def test_wrong_status_is_a_warning(server):
    result = check({"path": "/db"}, target(server))
    assert result.outcome == "warn"
    assert result.data["status"] == 503
    assert "expected 200" in result.summary
    assert result.data["body_excerpt"] == "database unavailable"
    assert server.requests[-1]["path"] == "/healthz/db"


def test_expected_status_and_latency_budget(server):
    assert check({"path": "/db", "expect_status": 503}, target(server)).outcome == "ok"
    lagging = check({"path": "/lagging", "max_latency_ms": 5}, target(server))
    assert lagging.outcome == "warn"
    assert lagging.data["latency_ms"] >= 50
    assert check({"path": "/lagging", "max_latency_ms": 10_000}, target(server)).outcome == "ok"


def test_slow_server_times_out_within_the_deadline(server):
    started = time.monotonic()
    with pytest.raises(StepTimeout):
        SPEC.run({"path": "/slow"}, target(server), started + 1.0)
    assert time.monotonic() - started < 2.0


def test_connection_refused_and_unknown_host_are_errors():
    refused = ResolvedTarget("app", "http", f"http://127.0.0.1:{free_port()}/healthz")
    with pytest.raises(StepError, match="cannot connect") as info:
        check({}, refused)
    assert not isinstance(info.value, StepTimeout)
    unknown = ResolvedTarget("app", "http", "http://nothing-here.invalid/healthz")
    with pytest.raises(StepError, match="cannot connect"):
        check({}, unknown)


def test_redirects_are_followed_only_on_the_same_host(server):
    same = check({"path": "/same"}, target(server))
    assert same.outcome == "ok" and same.data["status"] == 200
    assert [r["path"] for r in server.requests] == ["/healthz/same", "/healthz"]

    server.requests.clear()
    other = check({"path": "/elsewhere"}, target(server))
    assert other.outcome == "warn"
    assert other.data["status"] == 302
    assert other.data["redirects"][0]["followed"] is False
    assert "redirect to another host not followed" in other.summary
    assert [r["path"] for r in server.requests] == ["/healthz/elsewhere"]


def test_large_bodies_are_read_only_up_to_a_bound(server):
    result = check({"path": "/big"}, target(server))
    assert result.data["body_excerpt"] == "A" * 300
    assert len(result.text) < 1000


def test_token_is_sent_as_bearer_and_never_shown(server, monkeypatch):
    monkeypatch.setenv("IR_TEST_HEALTH_TOKEN", "tok-123")
    t = target(server, secret_env="IR_TEST_HEALTH_TOKEN")
    result = check({"path": "/private"}, t)
    assert result.outcome == "ok"
    assert server.requests[-1]["auth"] == "Bearer tok-123"
    shown = result.summary + result.text + json.dumps(result.data) + SPEC.plan({}, t)
    assert "tok-123" not in shown


def test_url_credentials_are_used_but_never_shown(server):
    url = server.base.replace("http://", "http://ops:hunter2@") + "/healthz"
    t = ResolvedTarget("app", "http", url)
    result = check({}, t)
    assert result.data["status"] == 200
    assert server.requests[-1]["auth"] == "Basic b3BzOmh1bnRlcjI="  # ops:hunter2
    shown = result.summary + result.text + json.dumps(result.data) + SPEC.plan({}, t)
    assert "hunter2" not in shown
    assert "ops:***@" in result.summary


@pytest.mark.parametrize("path", ["/..", "/../admin", "/./x", "/a?b=1", "a", "/x\n", "/a b"])
def test_paths_that_leave_the_base_url_are_refused(server, path):
    assert SPEC.validate_params({"path": path}) != []
    with pytest.raises(StepBlocked):
        SPEC.run({"path": path}, target(server), time.monotonic() + 5)
    assert server.requests == []


def test_plan_says_what_would_be_fetched(server):
    assert SPEC.plan({"path": "/db"}, target(server)).startswith(f"GET {server.base}/healthz/db")
    assert "health URL" in SPEC.plan({}, None)
