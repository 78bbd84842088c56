"""Admin building blocks every app uses: read-only admins and inlines, bounded inlines.

`incidents` is the lowest app, so `runbooks` and `executor` import these from here.
"""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Model
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from incidents import jsonsafe


class ReadOnlyAdmin:
    """Rows written by the services: the admin shows them and never adds them.

    Changing and deleting are refused too, unless a class opts in with `allow_change`
    or `allow_delete`; then the user's own permissions still decide.
    """

    allow_change = False
    allow_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.allow_change and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.allow_delete and super().has_delete_permission(request, obj)


class ReadOnlyInline(ReadOnlyAdmin):
    """An inline that lists related rows and offers no way to add, edit or delete them."""

    extra = 0
    can_delete = False


class NewestRowsFormSet(BaseInlineFormSet):
    """The newest `max_rows` related rows, for a view-only inline.

    The rows never post any field (see the template of NewestRowsInline), so the row
    count comes from the database on every request, not from the posted management
    form: saving the parent validates and saves nothing of them.
    """

    max_rows = 20

    def get_queryset(self) -> list[Model]:
        if not hasattr(self, "_newest"):
            self._newest = list(super().get_queryset()[: self.max_rows])
        return self._newest

    def initial_form_count(self) -> int:
        return len(self.get_queryset())

    def total_form_count(self) -> int:
        return self.initial_form_count()

    def _construct_form(self, i: int, **kwargs: Any):
        # Rows post no id: each form takes its row by position, bound or not.
        if i < self.initial_form_count():
            kwargs["instance"] = self.get_queryset()[i]
        return super()._construct_form(i, **kwargs)

    @property
    def total_count(self) -> int:
        """How many related rows there are in all (one COUNT)."""
        if not hasattr(self, "_total"):
            shown = len(self.get_queryset())
            self._total = shown if shown < self.max_rows else self.queryset.order_by().count()
        return self._total

    @property
    def changelist_url(self) -> str | None:
        """The related model's change list filtered to this parent, if it has one."""
        opts = self.model._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:  # the related model has no admin
            return None
        target = self.fk.target_field.name
        return f"{url}?{urlencode({f'{self.fk.name}__{target}__exact': self.instance.pk})}"


class NewestRowsInline(ReadOnlyInline):
    """A view-only inline bounded to the newest rows, linking to all of them.

    A parent with thousands of related rows renders in bounded time and size, and
    its change form posts a handful of management fields instead of two per row.
    """

    formset = NewestRowsFormSet
    template = "admin/edit_inline/newest_rows.html"
    max_rows = 20

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        formset.max_rows = self.max_rows
        return formset


class ChosenOnlyRelatedFilter(admin.RelatedFieldListFilter):
    """A filter by parent that lists only the chosen parent, never all of them.

    The links of NewestRowsInline arrive with the parent chosen; listing every
    incident in the sidebar would be one more unbounded query.
    """

    def field_choices(self, field, request, model_admin):
        if not self.lookup_val:
            return []
        ordering = self.field_admin_ordering(field, request, model_admin)
        chosen = {f"{field.target_field.name}__in": self.lookup_val}
        try:
            return field.get_choices(
                include_blank=False, ordering=ordering, limit_choices_to=chosen
            )
        except (ValueError, TypeError):
            return []  # a malformed id in the query string chooses nothing

    def has_output(self) -> bool:
        return True


class FiniteJSONFormField(forms.JSONField):
    """A JSON form field that refuses NaN, Infinity and overflowing numbers like every
    other JSON boundary (`incidents.jsonsafe`), with a form error instead of a 500."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                jsonsafe.loads(value)
            except jsonsafe.NonFiniteNumber as exc:
                raise ValidationError(str(exc), code="invalid") from exc
            except ValueError:
                pass  # not JSON at all: the parent's message says so
        return super().to_python(value)


# For admins whose forms edit JSON: formfield_overrides = FINITE_JSON
FINITE_JSON = {models.JSONField: {"form_class": FiniteJSONFormField}}
