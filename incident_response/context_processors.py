"""Template context every page shares."""

from typing import Any

from django.http import HttpRequest

from executor.policy import is_approver, safe_mode_describe, safe_mode_state


def safe_mode(request: HttpRequest) -> dict[str, Any]:
    """The safe-mode banner's state: every page and the admin show it while it is on."""
    # A page that read the switch with its own data leaves it on the request.
    state = request.safe_mode_state if hasattr(request, "safe_mode_state") else safe_mode_state()
    return {
        "safe_mode": state,
        "safe_mode_text": safe_mode_describe(state) if state else "",
        "safe_mode_can_toggle": is_approver(getattr(request, "user", None)),
    }
