"""What the executor's services share: their error, the action request's moves, its events."""

from typing import Any

from celery import current_app

from incidents.events import action_status_event
from incidents.transitions import transition

from ..choices import ACTION_TRANSITIONS
from ..models import ActionRequest

# The worker's task that runs an approved or clicked action (executor.tasks defines it).
# Queued by name: the tasks call these services, so the services do not import the tasks.
RUN_ACTION_TASK = "executor.run_action"


class ExecutorError(Exception):
    """A request the rules refuse; the message is meant for the person who asked."""


def action_move(
    request: ActionRequest, to_status: str, *, from_statuses: list[str], **fields: Any
) -> bool:
    """A move of the action table as a conditional UPDATE; True if this caller won.

    A move the table does not allow raises IllegalTransition; a lost race returns False.
    """
    return transition(
        ActionRequest,
        pk=request.pk,
        table=ACTION_TRANSITIONS,
        from_status=from_statuses,
        to_status=to_status,
        **fields,
    )


def record_status(request: ActionRequest, change: str, actor: Any = None, **details: Any) -> None:
    """The request moved; `change` and `details` as incidents.events.action_status_event takes."""
    action_status_event(
        incident=request.incident_id,
        action_request_id=request.pk,
        step_id=request.step_id,
        action=request.action,
        change=change,
        actor=actor,
        **details,
    )


def queue_action_run(action_request_id: int) -> None:
    """Hand the run to the worker (eagerly, with no broker); call it after commit."""
    current_app.tasks[RUN_ACTION_TASK].delay(action_request_id)
