"""Read queries for pages and commands."""

import time

from incidents.models import Incident


def latest_runbook(incident: Incident):
    return incident.runbooks.order_by("-version").first()


def pipeline_finished(*, incident: Incident, timeout: float = 300.0):
    """(runbook, first execution) once the pipeline has settled, polling the database.

    Settled means: the latest runbook is final and, if ready, its first execution is
    no longer running. Returns what exists when the timeout passes.
    """
    from executor.choices import ExecutionStatus
    from runbooks.choices import RunbookStatus

    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        runbook = latest_runbook(incident)
        execution = runbook.executions.order_by("started_at", "id").first() if runbook else None
        settled = runbook is not None and (
            runbook.status in (RunbookStatus.INVALID, RunbookStatus.FAILED)
            or (
                runbook.status == RunbookStatus.READY
                and execution is not None
                and execution.status != ExecutionStatus.RUNNING
            )
        )
        if settled or time.monotonic() > deadline:
            return runbook, execution
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
