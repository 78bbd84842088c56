"""Thin Celery wrappers: take ids, call a service, leave rows in a state that says what happened."""

from celery import shared_task

from . import services


@shared_task(name="executor.execute_runbook", acks_late=True)
def execute_runbook_task(runbook_id: int, trigger: str = "pipeline") -> str:
    return services.execution_run(runbook_id=runbook_id, trigger=trigger).status


# No automatic retry: an action that may have run is never run again by a retry;
# the claim in action_request_execute makes a redelivered message a no-op.
@shared_task(name="executor.run_action", acks_late=True)
def run_action_task(action_request_id: int) -> str:
    return services.action_request_execute(action_request_id=action_request_id).status


@shared_task(name="executor.sweep_stale")
def sweep_stale_task() -> dict:
    counts = services.sweep_stale()
    counts["expired"] = services.action_requests_expire()
    return counts
