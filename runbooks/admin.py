from django.contrib import admin

from .models import Runbook


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = ("id", "incident", "version", "status", "author", "model_id", "created_at")
    list_filter = ("status", "author")
    search_fields = ("incident__title", "artifact_sha256", "artifact_key")
    list_select_related = ("incident",)

    def get_readonly_fields(self, request, obj=None):
        # Versions are immutable records of what was generated.
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
