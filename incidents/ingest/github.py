"""GitHub webhooks as change events: `deployment_status` and `workflow_run`.

The event name comes in the `X-GitHub-Event` header; the body is the documented
payload (docs.github.com, "Webhook events and payloads"). Deliveries are signed with
`X-Hub-Signature-256`, checked before this parser runs. Events that say nothing about
a change (`ping`, a workflow that does not deploy, an inactive deployment) are accepted
and store nothing.
"""

import re
from collections.abc import Mapping
from typing import Any

from incidents.choices import ChangeKind, ChangeStatus

from .base import (
    MAX_SERVICE,
    PayloadError,
    as_object,
    bounded_raw,
    clip,
    opt_str,
    parse_time,
    raw_max_bytes,
    safe_url,
)
from .changes import ParsedChange, register_change_parser

DEPLOYMENT_STATES = {
    "success": ChangeStatus.SUCCEEDED,
    "failure": ChangeStatus.FAILED,
    "error": ChangeStatus.FAILED,
    "pending": ChangeStatus.STARTED,
    "queued": ChangeStatus.STARTED,
    "in_progress": ChangeStatus.STARTED,
}
# A workflow is a change when its name or file says it deploys something.
DEPLOYING_WORKFLOW = re.compile(r"deploy|release|rollout|rollback|promote|ship", re.IGNORECASE)


def _login(obj: Any) -> str:
    return clip(obj.get("login"), 200) if isinstance(obj, dict) else ""


def _id(obj: dict, path: str) -> str:
    value = obj.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise PayloadError(f"{path}.id is required")
    return clip(value, 100)


def _service(payload: dict, extra: Any, default_service: str) -> str:
    repo = as_object(payload.get("repository"), "repository")
    named = extra.get("service") if isinstance(extra, dict) else None
    if isinstance(named, str) and named.strip():
        return clip(named.strip(), MAX_SERVICE)
    return default_service or clip(repo.get("name"), MAX_SERVICE)


def _deployment_status(payload: dict, default_service: str) -> list[ParsedChange]:
    status = as_object(payload.get("deployment_status"), "deployment_status", required=True)
    deployment = as_object(payload.get("deployment"), "deployment", required=True)
    state = opt_str(status, "state", "deployment_status.", 20)
    if state == "inactive":
        return []  # an older deployment being superseded: not a change of its own
    if state not in DEPLOYMENT_STATES:
        raise PayloadError(f"deployment_status.state {state!r} is not a GitHub deployment state")
    extra = deployment.get("payload")
    task = opt_str(deployment, "task", "deployment.", 100)
    version = ""
    if isinstance(extra, dict) and isinstance(extra.get("version"), str):
        version = clip(extra["version"], 255)
    version = version or opt_str(deployment, "ref", "deployment.", 255)
    version = version or opt_str(deployment, "sha", "deployment.", 64)[:12]
    previous = extra.get("previous_version") if isinstance(extra, dict) else ""
    started = parse_time(deployment.get("created_at"), "deployment.created_at")
    updated = parse_time(status.get("created_at"), "deployment_status.created_at") or started
    if started is None:
        raise PayloadError("deployment.created_at is required")
    environment = opt_str(deployment, "environment", "deployment.", 100)
    return [
        ParsedChange(
            service=_service(payload, extra, default_service),
            kind=ChangeKind.ROLLBACK if "rollback" in task.lower() else ChangeKind.DEPLOY,
            status=DEPLOYMENT_STATES[state],
            external_id=f"deployment:{_id(deployment, 'deployment')}",
            version=version,
            previous_version=clip(previous, 255) if isinstance(previous, str) else "",
            author=_login(deployment.get("creator")) or _login(status.get("creator")),
            link=safe_url(status.get("target_url")) or safe_url(status.get("log_url")),
            description=clip(
                f"{environment}: {opt_str(deployment, 'description', 'deployment.', 400)}", 500
            ).strip(": "),
            started_at=started,
            finished_at=updated if DEPLOYMENT_STATES[state] != ChangeStatus.STARTED else None,
            raw=bounded_raw(
                {"event": "deployment_status", "state": state, "deployment": deployment.get("id")},
                raw_max_bytes(),
            ),
        )
    ]


def _workflow_run(payload: dict, default_service: str) -> list[ParsedChange]:
    run = as_object(payload.get("workflow_run"), "workflow_run", required=True)
    workflow = as_object(payload.get("workflow"), "workflow")
    name = opt_str(run, "name", "workflow_run.", 200)
    path = opt_str(workflow, "path", "workflow.", 400) or opt_str(run, "path", "workflow_run.", 400)
    if not DEPLOYING_WORKFLOW.search(f"{name} {path}"):
        return []
    run_status = opt_str(run, "status", "workflow_run.", 30)
    conclusion = opt_str(run, "conclusion", "workflow_run.", 30)
    if run_status == "completed":
        status = ChangeStatus.SUCCEEDED if conclusion == "success" else ChangeStatus.FAILED
    else:
        status = ChangeStatus.STARTED
    started = parse_time(
        run.get("run_started_at") or run.get("created_at"), "workflow_run.run_started_at"
    )
    if started is None:
        raise PayloadError("workflow_run.run_started_at is required")
    finished = parse_time(run.get("updated_at"), "workflow_run.updated_at")
    return [
        ParsedChange(
            service=_service(payload, None, default_service),
            kind=ChangeKind.ROLLBACK if "rollback" in name.lower() else ChangeKind.DEPLOY,
            status=status,
            external_id=f"workflow_run:{_id(run, 'workflow_run')}",
            version=opt_str(run, "head_sha", "workflow_run.", 64)[:12]
            or opt_str(run, "head_branch", "workflow_run.", 255),
            author=_login(run.get("actor")),
            link=safe_url(run.get("html_url")),
            description=clip(f"workflow {name} ({conclusion or run_status})", 500),
            started_at=started,
            finished_at=finished if status != ChangeStatus.STARTED else None,
            raw=bounded_raw(
                {"event": "workflow_run", "run": run.get("id"), "conclusion": conclusion},
                raw_max_bytes(),
            ),
        )
    ]


@register_change_parser("github")
def parse_github(
    payload: Any, headers: Mapping[str, str], default_service: str
) -> list[ParsedChange]:
    event = (headers.get("X-GitHub-Event") or "").strip()
    if not event:
        raise PayloadError("missing X-GitHub-Event header")
    body = as_object(payload, "the payload", required=True)
    if event == "deployment_status":
        return _deployment_status(body, default_service)
    if event == "workflow_run":
        return _workflow_run(body, default_service)
    return []  # ping and events we do not read: accepted, nothing stored
