"""service.restart against a local server that speaks the Fly Machines API's shapes.

GET /v1/apps/{app}/machines lists machines; POST …/machines/{id}/restart restarts
one; both need `Authorization: Bearer <token>`; errors are JSON {"error": "..."}.
"""

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port
from executor.connectors import fly
from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepTimeout
from executor.targets import Target

SPEC = REGISTRY["service.restart"]
TOKEN = "fly-test-token"
APP = "billing-api"


@dataclass
class FakeFly:
    base: str
    machines: list[dict] = field(
        default_factory=lambda: [
            {"id": "148ed123a0e189", "name": "web-1", "state": "started", "region": "ams"},
            {"id": "d8d9871b0e4689", "name": "web-2", "state": "started", "region": "ams"},
            {"id": "3d8d413b29d089", "name": "worker", "state": "stopped", "region": "fra"},
        ]
    )
    failing: set[str] = field(default_factory=set)
    restarted: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)


class FlyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, {"error": "unauthorized"})
            return False
        return True

    def do_GET(self) -> None:
        fake: FakeFly = self.server.fake  # type: ignore[attr-defined]
        fake.requests.append(("GET", self.path))
        if not self._authorised():
            return
        if self.path == f"/v1/apps/{APP}/machines":
            return self._json(200, fake.machines)
        self._json(404, {"error": "app not found"})

    def do_POST(self) -> None:
        fake: FakeFly = self.server.fake  # type: ignore[attr-defined]
        fake.requests.append(("POST", self.path))
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self._authorised():
            return
        found = re.fullmatch(rf"/v1/apps/{APP}/machines/([a-z0-9]+)/restart", self.path)
        ids = {m["id"] for m in fake.machines}
        if not found or found.group(1) not in ids:
            return self._json(404, {"error": "machine not found"})
        if found.group(1) in fake.failing:
            return self._json(412, {"error": "failed_precondition: machine is replacing"})
        fake.restarted.append(found.group(1))
        self._json(200, {"ok": True})


@pytest.fixture
def flyapi(monkeypatch) -> Iterator[FakeFly]:
    monkeypatch.setenv("IR_TEST_FLY_TOKEN", TOKEN)
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), FlyHandler)
    httpd.daemon_threads = True
    fake = FakeFly(base=f"http://127.0.0.1:{port}")
    httpd.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def target_for(fake: FakeFly) -> Target:
    return Target("fly", "fly", f"{fake.base}/v1/apps/{APP}", secret_env="IR_TEST_FLY_TOKEN")


def restart(params: dict, target: Target):
    assert SPEC.validate_params(params) == []
    result = SPEC.run(params, target, time.monotonic() + 5)
    json.dumps(result.data)
    return result


def test_plan_lists_the_machines_and_restarts_nothing(flyapi):
    plan = SPEC.plan({}, target_for(flyapi))
    assert f"Fly app {APP}" in plan
    for m in flyapi.machines:
        assert m["id"] in plan and m["state"] in plan
    assert [r[0] for r in flyapi.requests] == ["GET"]
    assert TOKEN not in plan
    chosen = SPEC.plan({"machine_ids": ["148ed123a0e189", "aaaaaaaaaaaa"]}, target_for(flyapi))
    assert "148ed123a0e189" in chosen and "not found in the app" in chosen
    assert "d8d9871b0e4689" not in chosen


def test_restart_all_machines_one_at_a_time(flyapi):
    result = restart({}, target_for(flyapi))
    assert result.outcome == "ok"
    assert flyapi.restarted == [m["id"] for m in flyapi.machines]
    assert result.data["restarted"] == flyapi.restarted
    assert result.summary == f"Restarted 3 of 3 machines of Fly app {APP}"
    assert TOKEN not in result.summary + result.text + json.dumps(result.data)


def test_a_failed_restart_stops_the_rest(flyapi):
    ids = [m["id"] for m in flyapi.machines]
    flyapi.failing = {ids[1]}
    result = restart({"machine_ids": ids}, target_for(flyapi))
    assert result.outcome == "warn"
    assert flyapi.restarted == [ids[0]]
    assert result.data["failed"]["id"] == ids[1]
    assert "replacing" in result.data["failed"]["error"]


def test_first_failure_is_an_error(flyapi):
    with pytest.raises(StepError, match="machine not found"):
        restart({"machine_ids": ["aaaaaaaaaaaa"]}, target_for(flyapi))
    assert flyapi.restarted == []


def test_app_from_options_and_refusals(flyapi, monkeypatch):
    with_options = Target(
        "fly", "fly", flyapi.base, secret_env="IR_TEST_FLY_TOKEN", options={"app": APP}
    )
    assert restart({"machine_ids": [flyapi.machines[0]["id"]]}, with_options).outcome == "ok"

    no_app = Target("fly", "fly", flyapi.base, secret_env="IR_TEST_FLY_TOKEN")
    with pytest.raises(StepBlocked, match="Fly app"):
        restart({}, no_app)
    bad_app = Target("fly", "fly", f"{flyapi.base}/v1/apps/Bad_App", secret_env="IR_TEST_FLY_TOKEN")
    with pytest.raises(StepBlocked):
        restart({}, bad_app)
    monkeypatch.delenv("IR_TEST_FLY_TOKEN")
    with pytest.raises(StepBlocked, match="token"):
        restart({}, target_for(flyapi))


@pytest.mark.parametrize(
    "bad", ["../../apps/x", "ABCDEF123", "abc", "148ed123a0e189\n", "a b c d e f"]
)
def test_machine_ids_are_checked_by_schema_and_connector(flyapi, bad):
    assert SPEC.validate_params({"machine_ids": [bad]}) != []
    with pytest.raises(StepBlocked):
        fly.restart(target_for(flyapi), bad, deadline=time.monotonic() + 5)
    assert not [r for r in flyapi.requests if r[0] == "POST"]


def test_unreachable_api_and_passed_deadline(flyapi):
    down = Target(
        "fly",
        "fly",
        f"http://127.0.0.1:{free_port()}/v1/apps/{APP}",
        secret_env="IR_TEST_FLY_TOKEN",
    )
    with pytest.raises(StepError) as info:
        restart({}, down)
    assert not isinstance(info.value, StepTimeout)
    with pytest.raises(StepTimeout):
        SPEC.run({}, target_for(flyapi), time.monotonic() - 1)


def test_plan_without_a_target_is_readable():
    assert "every machine" in SPEC.plan({}, None)
    assert "abcdef123" in SPEC.plan({"machine_ids": ["abcdef123"]}, None)
