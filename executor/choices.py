from django.db import models


class Safety(models.TextChoices):
    READ_ONLY = "read_only", "Read-only"
    REVERSIBLE = "reversible", "Reversible"
    DESTRUCTIVE = "destructive", "Destructive"


class StepKind(models.TextChoices):
    CHECK = "check", "Check"
    ACTION = "action", "Action"


class ExecutionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused"
    FAILED = "failed", "Failed"


# The only moves an execution may make (applied by incidents.transitions.transition):
# created running, it ends done, refused (the artifact failed re-verification) or failed
# (an error, or the sweeper finding its worker dead).
EXECUTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ExecutionStatus.RUNNING: frozenset(
        {ExecutionStatus.DONE, ExecutionStatus.REFUSED, ExecutionStatus.FAILED}
    ),
    ExecutionStatus.DONE: frozenset(),
    ExecutionStatus.REFUSED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
}


class CheckOutcome(models.TextChoices):
    OK = "ok", "OK"
    WARN = "warn", "Warning"
    BLOCKED = "blocked", "Blocked"
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timeout"


class ActionStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"


# The only moves an action request may make; incidents.transitions.transition applies
# them as conditional UPDATEs so that no two callers can make the same move.
ACTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ActionStatus.PROPOSED: frozenset(
        {ActionStatus.RUNNING, ActionStatus.AWAITING_APPROVAL, ActionStatus.BLOCKED}
    ),
    ActionStatus.AWAITING_APPROVAL: frozenset(
        {ActionStatus.APPROVED, ActionStatus.REJECTED, ActionStatus.EXPIRED, ActionStatus.BLOCKED}
    ),
    ActionStatus.APPROVED: frozenset({ActionStatus.RUNNING, ActionStatus.BLOCKED}),
    ActionStatus.RUNNING: frozenset({ActionStatus.SUCCEEDED, ActionStatus.FAILED}),
    ActionStatus.EXPIRED: frozenset({ActionStatus.AWAITING_APPROVAL}),
    ActionStatus.REJECTED: frozenset(),
    ActionStatus.SUCCEEDED: frozenset(),
    ActionStatus.FAILED: frozenset(),
    ActionStatus.BLOCKED: frozenset(),
}


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
