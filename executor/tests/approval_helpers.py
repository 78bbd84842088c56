"""Shared pieces of the approval tests: approvers, pending requests, Slack and Fly targets.

The Slack and Fly servers are the action tests' fakes (`testing.fakes`): local servers
that check requests and answer like the real APIs, so the actions really run and the
tests count what they really did.
"""

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps as django_apps
from django.contrib.auth.models import Group

from executor import services
from executor.choices import ExecutionStatus
from executor.models import ActionRequest
from incidents.tests.factories import IncidentFactory
from runbooks.tests.factories import ready_runbook, sample_document
from testing.fakes.fly import APP, TOKEN, FakeFly, fly_server, machine
from testing.fakes.slack import FakeSlack

from .factories import ApproverFactory


def make_approver(username: str, *, staff: bool = True):
    """An approver as the rule has it: staff, holding the approve (and view) permission."""
    user = ApproverFactory(username=username, is_staff=staff)
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


@contextmanager
def fly_target(settings, monkeypatch, machine_ids: list[str]) -> Iterator[FakeFly]:
    """A fake Fly app with these started machines, configured as the only target."""
    machines = [machine(m, f"web-{m[:4]}", "started", "ams", "app") for m in machine_ids]
    with fly_server(machines) as fake:
        monkeypatch.setenv("FLY_TEST_TOKEN", TOKEN)
        settings.EXECUTOR_TARGETS = {
            "fly-checkout": {
                "kind": "fly",
                "url": f"{fake.base}/v1/apps/{APP}",
                "secret_env": "FLY_TEST_TOKEN",
            }
        }
        yield fake


def use_slack_target(settings, fake: FakeSlack) -> None:
    """alert.notify's target: Slack through the fake's webhook (wins over the timeline)."""
    settings.EXECUTOR_TARGETS = {"hook": {"kind": "slack", "url": fake.webhook_url}}
