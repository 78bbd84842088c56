"""Read queries for the approval queue: the admin, the index summary and the command share them."""

from datetime import datetime

from django.db.models import Count, F, Min, Q, QuerySet

from .choices import ActionStatus, Decision
from .models import ActionRequest

# Most severe first (SEV1 sorts before SEV2), then the one waiting longest.
QUEUE_ORDERING = ("incident__severity", "requested_at", "id")


def approval_queue(*, status: str | None = ActionStatus.AWAITING_APPROVAL) -> QuerySet:
    """Action requests with what a decision needs; only those waiting unless `status` says else."""
    qs = ActionRequest.objects.select_related("incident", "runbook", "requested_by").annotate(
        # Approvals of the current round: an expired round's do not count.
        approvals_given=Count(
            "approvals",
            filter=Q(approvals__decision=Decision.APPROVE)
            & Q(approvals__round=F("approval_round")),
        )
    )
    if status:
        qs = qs.filter(status=status)
    return qs.order_by(*QUEUE_ORDERING)


def pending_summary() -> dict:
    """How many requests wait for a decision, by severity, and since when the oldest waits."""
    rows = (
        ActionRequest.objects.filter(status=ActionStatus.AWAITING_APPROVAL)
        .values("incident__severity")
        .annotate(n=Count("id"), oldest=Min("requested_at"))
        .order_by("incident__severity")
    )
    by_severity = [(r["incident__severity"], r["n"]) for r in rows]
    oldest: datetime | None = min((r["oldest"] for r in rows if r["oldest"]), default=None)
    return {
        "total": sum(n for _, n in by_severity),
        "by_severity": by_severity,
        "oldest": oldest,
    }
