"""Shared pieces of the approval tests: approvers, pending requests, fake Slack and Fly servers.

The fakes are the action tests' (test_actions_notify, test_actions_service): local
servers that check requests and answer like the real APIs, so the actions really
run and the tests count what they really did.
"""

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission

from conftest import handler_server
from executor import services
from executor.choices import ExecutionStatus
from executor.models import ActionRequest
from executor.tests.test_actions_notify import WEBHOOK_PATH, SlackHandler
from executor.tests.test_actions_notify import FakeSlack as ActionsSlack
from executor.tests.test_actions_service import APP, TOKEN, FlyHandler, _machine
from executor.tests.test_actions_service import FakeFly as ActionsFly
from incidents.tests.factories import IncidentFactory, UserFactory
from runbooks.tests.factories import ready_runbook, sample_document


def make_approver(username: str, *, staff: bool = True):
    """An approver as the rule has it: staff, holding the approve (and view) permission."""
    user = UserFactory(username=username, is_staff=staff)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["approve_actionrequest", "view_actionrequest"])
    )
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def approvers_group() -> Group:
    """The `approvers` group as its data migration makes it (a flushed database lost it)."""
    migration = importlib.import_module("executor.migrations.0003_approvers_group")
    migration.create_group(django_apps, None)  # idempotent
    return Group.objects.get(name="approvers")


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
    return {r.step_id: r for r in runbook.action_requests.select_related("incident")}


def notify_request(
    step_id: str = "tell", *, severity: str = "SEV3", message: str = "restarting"
) -> ActionRequest:
    """alert.notify marked unsafe by the runbook: it waits for one approver."""
    return pending_requests(step(step_id, "alert.notify", message=message), severity=severity)[
        step_id
    ]


@dataclass
class FakeSlack(ActionsSlack):
    """The action tests' Slack; `hold` makes each answer wait until `release` is set."""

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


class _HoldingSlackHandler(SlackHandler):
    # The post is already recorded when the answer is made: hold only the answer.
    def _answer(self, *args, **kwargs) -> None:
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        fake.arrived.set()
        if fake.hold:
            fake.release.wait(120)
        super()._answer(*args, **kwargs)


@contextmanager
def fake_slack_server() -> Iterator[FakeSlack]:
    with handler_server(_HoldingSlackHandler) as (httpd, base):
        httpd.fake = fake = FakeSlack(base=base)
        yield fake


@dataclass
class FakeFly(ActionsFly):
    """The action tests' Fly Machines API; `restarts` lists the machines restarted, in order."""

    @property
    def restarts(self) -> list[str]:
        return [mid for verb, mid in self.done if verb == "restart"]


@contextmanager
def fly_target(settings, monkeypatch, machine_ids: list[str]) -> Iterator[FakeFly]:
    """A fake Fly app with these started machines, configured as the only target."""
    with handler_server(FlyHandler) as (httpd, base):
        machines = [_machine(m, f"web-{m[:4]}", "started", "ams", "app") for m in machine_ids]
        httpd.fake = fake = FakeFly(base=base, machines=machines)
        monkeypatch.setenv("FLY_TEST_TOKEN", TOKEN)
        settings.EXECUTOR_TARGETS = {
            "fly-checkout": {
                "kind": "fly",
                "url": f"{base}/v1/apps/{APP}",
                "secret_env": "FLY_TEST_TOKEN",
            }
        }
        yield fake


def use_slack_target(settings, fake: FakeSlack) -> None:
    """alert.notify's target: Slack through the fake's webhook (wins over the timeline)."""
    settings.EXECUTOR_TARGETS = {"hook": {"kind": "slack", "url": fake.webhook_url}}
