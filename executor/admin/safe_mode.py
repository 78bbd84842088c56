"""Safe mode in the admin: its history, and a turn of the switch as an added row."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect

from ..models import SafeModeChange
from ..policy import is_approver
from ..safe_mode import SafeModeError, safe_mode_disable, safe_mode_enable


class SafeModeChangeForm(forms.ModelForm):
    class Meta:
        model = SafeModeChange
        fields = ["enabled", "reason"]


@admin.register(SafeModeChange)
class SafeModeChangeAdmin(admin.ModelAdmin):
    form = SafeModeChangeForm
    list_display = ["created_at", "enabled", "who", "automatic", "reason"]
    list_filter = ["enabled", "automatic"]
    readonly_fields = ["actor", "automatic", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_approver(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SafeModeChange, form: Any, change: bool):
        # The switch's rules (approver, reason, no double turn) live in the service.
        turn = safe_mode_enable if obj.enabled else safe_mode_disable
        try:
            turned = turn(actor=request.user, reason=obj.reason)
        except SafeModeError as exc:
            request.safe_mode_error = str(exc)  # per request: the admin instance is shared
        else:
            obj.pk = turned.pk

    def response_add(self, request: HttpRequest, obj: SafeModeChange, post_url_continue=None):
        if error := getattr(request, "safe_mode_error", ""):
            self.message_user(request, error, messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)
