"""Shared pieces of the approval tests: approvers, pending requests, fake Slack and Fly servers.

The servers are local HTTP servers (conftest.http_server) that answer like the real
APIs, so the actions really run and the tests count what they really did.
"""

import json
import threading
from dataclasses import dataclass, field

from django.contrib.auth.models import Permission

from executor import services
from executor.choices import ExecutionStatus
from executor.models import ActionRequest
from incidents.tests.factories import IncidentFactory, UserFactory
from runbooks.tests.factories import ready_runbook, sample_document


def make_approver(username: str, *, staff: bool = False):
    user = UserFactory(username=username, is_staff=staff)
    user.user_permissions.add(Permission.objects.get(codename="approve_actionrequest"))
    if staff:
        user.user_permissions.add(Permission.objects.get(codename="view_actionrequest"))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def step(step_id: str, action: str, *, safe: bool = False, **params) -> dict:
    return {"id": step_id, "action": action, "safe": safe, "params": params, "rationale": "because"}


def pending_requests(
    *steps: dict, severity: str = "SEV3", title: str = ""
) -> dict[str, ActionRequest]:
    """Action requests as the pipeline leaves them, keyed by step id."""
    incident = IncidentFactory(severity=severity, **({"title": title} if title else {}))
    runbook = ready_runbook(
        sample_document(checks=[], recommended_actions=list(steps)), incident=incident
    )
    execution = services.execution_run(runbook_id=runbook.pk)
    assert execution.status == ExecutionStatus.DONE, execution.error
    return {r.action_id: r for r in runbook.action_requests.select_related("incident")}


def notify_request(
    step_id: str = "tell", *, severity: str = "SEV3", message: str = "restarting"
) -> ActionRequest:
    """alert.notify marked unsafe by the runbook: it waits for one approver."""
    return pending_requests(step(step_id, "alert.notify", message=message), severity=severity)[
        step_id
    ]


@dataclass
class FakeSlack:
    """Counts webhook posts; `hold` makes each post wait until `release` is set."""

    base: str = ""
    posts: list[dict] = field(default_factory=list)
    hold: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def webhook_url(self) -> str:
        return self.base + "/services/T0001/B0001/hook"

    def texts(self) -> list[str]:
        return [p.get("text", "") for p in self.posts]


def start_fake_slack(http_server, *, hold: bool = False) -> FakeSlack:
    fake = FakeSlack(hold=hold)

    def handle(h) -> None:
        if h.command != "POST" or not h.path.startswith("/services/"):
            h.send_response(404)
            h.end_headers()
            return
        fake.posts.append(json.loads(h.body or b"{}"))
        fake.arrived.set()
        if fake.hold:
            fake.release.wait(120)
        body = b"ok"
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    fake.base = http_server(handle)
    return fake


@dataclass
class FakeFly:
    """The Machines API for one app: list machines, restart one (counted)."""

    base: str = ""
    app: str = "checkout"
    machines: list[dict] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base}/v1/apps/{self.app}"


def start_fake_fly(http_server, machine_ids: list[str]) -> FakeFly:
    fake = FakeFly(
        machines=[
            {"id": m, "name": f"web-{m[:4]}", "state": "started", "region": "ams"}
            for m in machine_ids
        ]
    )

    def answer(h, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle(h) -> None:
        if h.headers.get("Authorization") != "Bearer fly-test-token":
            answer(h, 401, {"error": "unauthorized"})
        elif h.command == "GET" and h.path == f"/v1/apps/{fake.app}/machines":
            answer(h, 200, fake.machines)
        elif h.command == "POST" and h.path.endswith("/restart"):
            fake.restarts.append(h.path.split("/")[-2])
            answer(h, 200, {"ok": True})
        else:
            answer(h, 404, {"error": "not found"})

    fake.base = http_server(handle)
    return fake


def use_fly(settings, monkeypatch, fake: FakeFly) -> None:
    monkeypatch.setenv("FLY_TEST_TOKEN", "fly-test-token")
    settings.EXECUTOR_TARGETS = {
        "fly-checkout": {"kind": "fly", "url": fake.url, "secret_env": "FLY_TEST_TOKEN"}
    }


def use_slack_target(settings, fake: FakeSlack) -> None:
    """alert.notify's target: Slack through the fake's webhook (wins over the timeline)."""
    settings.EXECUTOR_TARGETS = {"hook": {"kind": "slack", "url": fake.webhook_url}}
