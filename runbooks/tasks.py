from celery import shared_task

from .services import (
    runbook_generate,
    runbook_mark_failed,
    runbook_requeue,
    runbook_sweep_leases,
)


@shared_task(
    name="runbooks.generate",
    bind=True,
    acks_late=True,
    max_retries=2,
    default_retry_delay=5,
)
def generate_runbook_task(self, runbook_id: int) -> str:
    try:
        return runbook_generate(runbook_id=runbook_id).status
    except Exception as exc:
        # Generation itself falls back to the offline planner; reaching here means the
        # database or storage failed. Retry, then leave the row failed, never generating.
        if self.request.retries < self.max_retries:
            runbook_requeue(runbook_id=runbook_id)
            raise self.retry(exc=exc) from exc
        return runbook_mark_failed(
            runbook_id=runbook_id, error=f"{type(exc).__name__}: {exc}"
        ).status


@shared_task(name="runbooks.sweep_leases")
def sweep_leases_task() -> dict[str, int]:
    return runbook_sweep_leases()
