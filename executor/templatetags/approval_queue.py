"""Template tags for the approval queue: the pending summary on the admin index, badges."""

from django import template

from executor import policy, selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def approval_queue_summary(context) -> dict | None:
    """What waits for a decision, for people who may see the queue; None for everyone else."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("executor.view_actionrequest"):
        return None
    summary = selectors.pending_summary()
    summary["can_decide"] = policy.is_approver(user)
    return summary
