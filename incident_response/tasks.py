"""Thin Celery wrappers around the pipeline's own work (the hand-offs that wait)."""

import math

from celery import shared_task

from .pipeline import (
    CONTEXT_STAGE,
    PIPELINE_SWEEP,
    RUNBOOK_DEBOUNCE,
    context_stage,
    pipeline_sweep,
    runbook_debounce,
)


@shared_task(name=RUNBOOK_DEBOUNCE, bind=True)
def runbook_debounce_task(self, incident_id: int) -> str:
    wait = runbook_debounce(incident_id=incident_id)
    if wait is None:
        return "done"
    if not self.request.is_eager:
        # Alerts still arriving, or too many generations running: look again later.
        runbook_debounce_task.apply_async(args=[incident_id], countdown=math.ceil(wait))
    return f"waiting {wait:.0f}s"


@shared_task(name=PIPELINE_SWEEP)
def sweep_pipeline() -> dict[str, int]:
    return pipeline_sweep().as_dict()


@shared_task(name=CONTEXT_STAGE)
def context_stage_task(runbook_id: int) -> str:
    context_stage(runbook_id=runbook_id)
    return "done"
