"""Handing work to Celery by task name, and whether there is a worker at all.

The tasks module imports the ingest services; the services never import the tasks
module. They publish by name (the constants below, which the tasks are registered
under), so neither side needs the other at import time. The pipeline sends its own
stages by name through `enqueue` too.
"""

from collections.abc import Sequence
from typing import Any

from celery import current_app

PROCESS_OUTBOX = "incidents.process_outbox"
PROCESS_ALERTS = "incidents.process_alerts"
SWEEP_OUTBOX = "incidents.sweep_outbox"


def eager() -> bool:
    """No broker (the embedded default): tasks would run inline, in the caller."""
    return bool(current_app.conf.task_always_eager)


def enqueue(name: str, *, args: Sequence[Any] = (), countdown: float | None = None) -> None:
    """Publish one message for the task registered as `name`, or raise if the broker is down.

    Worker mode only: with eager Celery, callers run the service inline instead.
    """
    # Nobody reads these tasks' results (the worker stores none). Without
    # ignore_result, the sender subscribes to the task's result channel (a connection
    # of its own, then a SUBSCRIBE and an UNSUBSCRIBE per message) for a result that
    # never comes.
    current_app.send_task(
        name, args=list(args), countdown=countdown, retry=False, ignore_result=True
    )
