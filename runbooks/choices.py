from django.db import models


class RunbookStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    GENERATING = "generating", "Generating"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"
    FAILED = "failed", "Failed"


# The only moves a runbook version may make (applied by incidents.transitions.transition).
# Created queued; one worker claims it (generating); a retry after a transient error, or
# the lease sweep once a dead worker's lease ran out, puts it back in the queue; past the
# last attempt, and for versions the stale sweeper finds, it ends failed.
RUNBOOK_TRANSITIONS: dict[str, frozenset[str]] = {
    RunbookStatus.QUEUED: frozenset({RunbookStatus.GENERATING, RunbookStatus.FAILED}),
    RunbookStatus.GENERATING: frozenset(
        {RunbookStatus.READY, RunbookStatus.INVALID, RunbookStatus.FAILED, RunbookStatus.QUEUED}
    ),
    RunbookStatus.READY: frozenset(),
    RunbookStatus.INVALID: frozenset(),
    RunbookStatus.FAILED: frozenset(),
}


class RunbookAuthor(models.TextChoices):
    CLAUDE = "claude", "Claude"
    OFFLINE = "offline", "Offline planner"
