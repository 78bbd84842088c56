"""Thin Celery wrappers: take ids, call a service, leave rows in a state that says what happened."""

from typing import Any

from celery import shared_task

from .decision_notices import NOTIFY_DECISION_TASK, decision_notify
from .safe_mode import safe_mode_auto_check
from .services.action_requests import action_request_execute
from .services.approvals import action_requests_expire
from .services.common import RUN_ACTION_TASK
from .services.executions import execution_run
from .services.sweep import sweep_stale


@shared_task(name="executor.execute_runbook", acks_late=True)
def execute_runbook_task(runbook_id: int, trigger: str = "pipeline") -> str:
    return execution_run(runbook_id=runbook_id, trigger=trigger).status


# No automatic retry: an action that may have run is never run again by a retry;
# the claim in action_request_execute makes a redelivered message a no-op. Its result
# (the status each delivery found) is kept: actions are few, and it tells what a
# redelivery did.
@shared_task(name=RUN_ACTION_TASK, acks_late=True, ignore_result=False)
def run_action_task(action_request_id: int) -> str:
    return action_request_execute(action_request_id=action_request_id).status


@shared_task(name="executor.sweep_stale", ignore_result=False)
def sweep_stale_task() -> dict:
    counts = sweep_stale()
    counts["expired"] = action_requests_expire()
    return counts


@shared_task(name=NOTIFY_DECISION_TASK)
def notify_decision_task(**decision: Any) -> bool:
    return decision_notify(**decision)


@shared_task(name="executor.safe_mode_check", ignore_result=True)
def safe_mode_check_task() -> bool:
    """The automatic safe-mode trigger for what no save announces (the alert rate)."""
    return safe_mode_auto_check() is not None
