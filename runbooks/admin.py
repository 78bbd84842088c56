from django.contrib import admin

from incidents.admin.mixins import ReadOnlyAdmin

from .models import Runbook


@admin.register(Runbook)
class RunbookAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    # Versions are immutable records of what was generated; an old one may be deleted.
    allow_delete = True
    list_display = ("id", "incident", "version", "status", "author", "model_id", "created_at")
    list_filter = ("status", "author")
    search_fields = ("incident__title", "artifact_sha256", "artifact_key")
    list_select_related = ("incident",)
