"""The sweeper: rows left behind by a dead worker say so instead of staying busy forever."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from runbooks.services import runbook_mark_failed

from ..choices import ActionStatus, ExecutionStatus
from ..models import ActionRequest, Execution
from .common import action_move, queue_action_run, record_status
from .executions import execution_mark_failed


def sweep_stale(*, now: datetime | None = None) -> dict[str, int]:
    """Rows left behind by a dead worker say so instead of staying busy forever."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.EXECUTOR_STALE_AFTER_SECONDS)
    counts = {"runbooks": 0, "executions": 0, "actions_lost": 0, "actions_requeued": 0}
    for rb_id in Runbook.objects.filter(
        status__in=[RunbookStatus.GENERATING, RunbookStatus.QUEUED], updated_at__lt=cutoff
    ).values_list("pk", flat=True):
        runbook_mark_failed(runbook_id=rb_id, error="worker lost during generation; regenerate it")
        counts["runbooks"] += 1
    for execution_id in Execution.objects.filter(
        status=ExecutionStatus.RUNNING, started_at__lt=cutoff
    ).values_list("pk", flat=True):
        if execution_mark_failed(
            execution_id=execution_id, error="worker lost while checks ran", at=now
        ):
            counts["executions"] += 1
    for request in ActionRequest.objects.filter(status=ActionStatus.RUNNING, started_at__lt=cutoff):
        with transaction.atomic():
            if action_move(
                request,
                ActionStatus.FAILED,
                from_statuses=[ActionStatus.RUNNING],
                error="worker lost: outcome unknown, verify before retrying",
                finished_at=now,
            ):
                counts["actions_lost"] += 1
                record_status(
                    request,
                    f"{request.step_id}: worker lost: outcome unknown, verify before retrying",
                )
    # Queued but never claimed: it provably did not start, so it is safe to queue again.
    unclaimed = dict(status=ActionStatus.RUNNING, started_at__isnull=True, updated_at__lt=cutoff)
    for pk in ActionRequest.objects.filter(**unclaimed).values_list("pk", flat=True):
        # Touch it first, so the next sweep does not queue it again while this message waits.
        if ActionRequest.objects.filter(pk=pk, **unclaimed).update(updated_at=now):
            queue_action_run(pk)
            counts["actions_requeued"] += 1
    return counts
