"""The hand-offs between the stages of an incident: the only code that calls "up".

Apps depend one way, incidents <- runbooks <- executor. A lower app announces that
its stage is done through a signal it owns (`incidents.signals`, `runbooks.signals`);
this module listens and starts the next stage, always after the announcing
transaction commits. Nothing else imports a higher app from a lower one
(import-linter holds it in `make lint`).

    incident declared ─▶ runbook requested ─▶ runbook generated ─▶ checks run
    (incidents)          (runbooks)           (runbooks)           (executor)
"""

from functools import partial
from typing import Any

from django.db import transaction

from executor import authoring
from executor.tasks import execute_runbook_task
from incidents.signals import incident_declared
from runbooks.generation import offer
from runbooks.services import runbook_request
from runbooks.signals import runbook_ready, runbook_requested
from runbooks.tasks import generate_runbook_task


def on_incident_declared(*, incident: Any, actor: Any = None, **_: Any) -> None:
    """A declared incident gets its first runbook at once (same transaction)."""
    runbook_request(incident=incident, actor=actor)


def on_runbook_requested(*, runbook_id: int, **_: Any) -> None:
    transaction.on_commit(partial(generate_runbook_task.delay, runbook_id))


def on_runbook_ready(*, runbook_id: int, **_: Any) -> None:
    transaction.on_commit(partial(execute_runbook_task.delay, runbook_id))


def connect() -> None:
    """Wire the lower apps' signals to the next stage; called once from AppConfig.ready."""
    # The runbook author may offer exactly what the executor's registry allows.
    offer.install(authoring)
    incident_declared.connect(on_incident_declared, dispatch_uid="pipeline.declared")
    runbook_requested.connect(on_runbook_requested, dispatch_uid="pipeline.runbook_requested")
    runbook_ready.connect(on_runbook_ready, dispatch_uid="pipeline.runbook_ready")
