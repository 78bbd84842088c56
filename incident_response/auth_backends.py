"""Authentication backend: Django's, with a user's permissions read in one query."""

from typing import Any

from django.contrib.auth.backends import ModelBackend

from executor.policy import granted_permissions


class OneQueryModelBackend(ModelBackend):
    """ModelBackend whose permission set (the user's own and their groups') is one
    statement instead of two. Every page asks it at least once (the safe-mode switch is
    offered to approvers), so it is on every page's path."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache") and not user_obj.is_superuser:
            rows = granted_permissions(user_obj).values_list("content_type__app_label", "codename")
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in rows}
        return super().get_all_permissions(user_obj, obj)
