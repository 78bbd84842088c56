"""Admin for the service catalog and its targets (operators edit these)."""

import os

from django.contrib import admin

from incidents.admin.mixins import FINITE_JSON

from ..models import Service, Target


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    formfield_overrides = FINITE_JSON
    list_display = ("name", "kind", "base", "secret_env", "secret_present", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base")

    @admin.display(boolean=True, description="secret set")
    def secret_present(self, obj: Target) -> bool | None:
        # Whether the variable is set in this process; its value is never shown.
        return bool(os.environ.get(obj.secret_env)) if obj.secret_env else None


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    formfield_overrides = FINITE_JSON
    list_display = ("name", "team")
    search_fields = ("name", "team", "description")
    filter_horizontal = ("targets",)
