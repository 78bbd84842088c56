"""Admin for the service catalog and its targets (operators edit these)."""

import os
import re

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from incidents.admin.mixins import FINITE_JSON

from ..models import Service, Target, validate_owner_emails


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


class EmailListField(forms.CharField):
    """Emails one per line (commas and spaces work too), stored as a list, lowercased."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value: object) -> object:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: object) -> list[str]:
        text = super().to_python(value)
        emails: list[str] = []
        for email in re.split(r"[\s,;]+", text.strip().lower()):
            if email and email not in emails:
                emails.append(email)
        return emails

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")
        validate_owner_emails(value)


class ServiceForm(forms.ModelForm):
    """The model and its fields come from the admin (every field of Service)."""

    owners = EmailListField(
        required=False,
        max_length=5000,
        help_text="One email per line. Each owner is invited to the Slack war room of the "
        "service's incidents (matched by email; unknown ones are listed on the timeline).",
    )


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    form = ServiceForm
    formfield_overrides = FINITE_JSON
    list_display = ("name", "team", "owner_count")
    search_fields = ("name", "team", "description")

    @admin.display(description="owners")
    def owner_count(self, obj: Service) -> int:
        return len(obj.owners or [])

    filter_horizontal = ("targets",)
