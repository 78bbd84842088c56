"""The approval rule, in one place: whether an action needs approval, how many approvers,
who may approve, which approvals count, and how long a request waits.

The services, the admin, the web UI, the reports and the `approvals` command all ask
here, so every door applies the same rule. The registry's safety class decides;
the runbook's `safe` flag can only make an action stricter, never looser.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents.choices import severity_info
from incidents.compiled import Compiled

from .choices import Decision, Safety
from .models import SafeModeChange

APPROVE_PERMISSION = "executor.approve_actionrequest"
# Acting on an incident (declare, change, post, regenerate, run an action): responders.
RESPOND_PERMISSION = "executor.run_action"

# Stricter is higher: an action whose class rose since its plan must be asked for again.
SAFETY_RANK: dict[str, int] = {Safety.READ_ONLY: 0, Safety.REVERSIBLE: 1, Safety.DESTRUCTIVE: 2}


def is_stricter(safety: str, than: str) -> bool:
    """True when `safety` is a stricter class than `than` (an unknown `than` ranks lowest)."""
    return SAFETY_RANK[safety] > SAFETY_RANK.get(than, 0)


def approval_reason(safety: str, marked_safe: bool) -> str:
    """Why an action needs approval, or "" when a responder may run it with one click."""
    if safety == Safety.DESTRUCTIVE:
        return "destructive action: the registry always requires approval"
    if not marked_safe:
        return "the runbook marked this action unsafe"
    return ""


def approvals_required(request: Any) -> int:
    """Distinct approvers needed: destructive actions on severities the table marks
    (SEV1/SEV2) need APPROVALS_REQUIRED_DESTRUCTIVE of them; everything else one."""
    if (
        request.safety == Safety.DESTRUCTIVE
        and severity_info(request.incident.severity).multiple_approvers
    ):
        return max(1, int(settings.APPROVALS_REQUIRED_DESTRUCTIVE))
    return 1


def is_active_user(user: Any) -> bool:
    """A signed-in, active account: the floor under every permission rule."""
    return bool(
        user and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)
    )


def granted_permissions(user: Any) -> QuerySet:
    """The permissions `user` holds, their own and their groups', as Django's model
    backend grants them: one statement."""
    return Permission.objects.filter(Q(user=user) | Q(group__user=user)).order_by().distinct()


def is_approver(user: Any) -> bool:
    """An active staff member holding the approve permission (the `approvers` group grants it).

    Staff, because the admin, where the queue lives, admits only staff: the shell and
    the UI must not let in someone the admin would refuse.
    """
    return bool(
        is_active_user(user)
        and getattr(user, "is_staff", False)
        and user.has_perm(APPROVE_PERMISSION)
    )


def is_responder(user: Any) -> bool:
    """An active user holding the respond permission (the `responders` group grants it);
    anyone signed in may look, only a responder may act."""
    return bool(is_active_user(user) and user.has_perm(RESPOND_PERMISSION))


def is_requester(user: Any, request: Any) -> bool:
    """Whether `user` asked for the action: clicked run or ask again (`requested_by`), or
    caused its proposal by declaring the incident or requesting the runbook (`caused_by`)."""
    pk = getattr(user, "pk", None)
    if pk is None:
        return False
    return pk in (request.requested_by_id, getattr(request, "caused_by_id", None))


def may_approve(user: Any, request: Any) -> bool:
    """An approver who neither asked for the action nor caused its proposal (four eyes)."""
    return is_approver(user) and not is_requester(user, request)


def current_approvals(request: Any) -> QuerySet:
    """Approvals of the current round: one given before an expiry was for a stale plan."""
    return request.approvals.filter(decision=Decision.APPROVE, round=request.approval_round)


def approval_ttl(severity: str) -> timedelta:
    """How long a request may wait for a decision: the severity table, unless the
    settings override it (APPROVAL_TTL_SEVn_MINUTES)."""
    minutes = settings.APPROVAL_TTL_MINUTES.get(severity)
    if minutes is None:
        minutes = severity_info(severity).approval_ttl_minutes
    return timedelta(minutes=float(minutes))


def safe_mode_refusal(safety: str) -> str:
    """Why an action of this safety class may not run now (safe mode), or "" if it may.

    Read-only checks always run; everything else waits, approved actions included.
    """
    if safety == Safety.READ_ONLY:
        return ""
    state = safe_mode_state()
    return safe_mode_describe(state) if state else ""


def safe_mode_changes() -> QuerySet:
    """Every switch of safe mode, newest first: the first says whether it is on."""
    return SafeModeChange.objects.order_by("-created_at", "-id")


def _latest_switch(shape: None) -> QuerySet:
    return safe_mode_changes().select_related("actor")[:1]


# Asked before every action is planned or run: built once, not per call.
_latest_switch_compiled = Compiled(_latest_switch)


def safe_mode_state() -> SafeModeChange | None:
    """The change that turned safe mode on, or None when it is off."""
    latest = _latest_switch_compiled.first()
    return latest if latest and latest.enabled else None


def safe_mode_describe(state: SafeModeChange) -> str:
    """'safe mode is on since 03:12 (by alice: reason)', in the server's time zone."""
    since = timezone.localtime(state.created_at).strftime("%H:%M")
    return f"safe mode is on since {since} (by {state.who}: {state.reason[:200]})"
