"""Who may edit a postmortem and who may move it to review or publish it.

Editing (sections, drafting on demand, sending back to draft) follows the
responder rule of `executor/policy.py`, or the model's change permission for
people who write postmortems without acting on incidents. Sending to review and
publishing take `learning.publish_postmortem`. Services, views and templates
all ask here.
"""

from typing import Any

from executor.policy import is_active_user, is_responder

from .choices import PostmortemStatus

EDIT_PERMISSION = "learning.change_postmortem"
PUBLISH_PERMISSION = "learning.publish_postmortem"

NOT_AN_EDITOR = (
    "Only responders, or people with the “Can change postmortem” permission, may edit "
    "postmortems: ask an administrator. You can still read it."
)
NOT_A_PUBLISHER = (
    "Sending a postmortem to review or publishing it needs the “Can send postmortems "
    "to review and publish them” permission (the `postmortem reviewers` group): ask "
    "an administrator."
)


def may_edit_postmortem(user: Any) -> bool:
    """A responder, or an active user holding the change permission."""
    return is_responder(user) or (is_active_user(user) and user.has_perm(EDIT_PERMISSION))


def may_publish_postmortem(user: Any) -> bool:
    """An active user holding the publish permission."""
    return is_active_user(user) and user.has_perm(PUBLISH_PERMISSION)


def may_move_postmortem(user: Any, to_status: str) -> bool:
    """Review and publication take the publish permission; back to draft, either one."""
    if to_status == PostmortemStatus.DRAFT:
        return may_edit_postmortem(user) or may_publish_postmortem(user)
    return may_publish_postmortem(user)


def move_refusal(to_status: str) -> str:
    return NOT_AN_EDITOR if to_status == PostmortemStatus.DRAFT else NOT_A_PUBLISHER
