"""Verbs for executions and action requests. Views, admin, tasks and commands call these.

One module per stage: executions (checks), action_requests (propose, run, execute),
approvals (decide, expire, ask again) and sweep (rows a dead worker left behind).
The approval rule itself lives in executor.policy.
"""

from ..policy import approval_reason, approval_ttl, approvals_required
from .action_requests import (
    action_request_execute,
    action_request_run,
    action_requests_create,
)
from .approvals import (
    action_request_approve,
    action_request_reask,
    action_request_reject,
    action_requests_expire,
)
from .common import ExecutorError
from .executions import execution_mark_failed, execution_open, execution_run
from .sweep import sweep_stale

__all__ = [
    "ExecutorError",
    "action_request_approve",
    "action_request_execute",
    "action_request_reask",
    "action_request_reject",
    "action_request_run",
    "action_requests_create",
    "action_requests_expire",
    # The approval rule's names, for callers not yet reading executor.policy.
    "approval_reason",
    "approval_ttl",
    "approvals_required",
    "execution_mark_failed",
    "execution_open",
    "execution_run",
    "sweep_stale",
]
