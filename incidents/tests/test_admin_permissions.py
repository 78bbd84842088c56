"""What each admin lets a superuser do: the read-only mixin decides it in one place."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from incidents.tests.factories import UserFactory

# model label: (add, change, delete) for a superuser
EXPECTED = {
    "incidents.incident": (True, True, True),
    "incidents.timelineevent": (False, False, False),
    "incidents.alert": (False, True, True),
    "incidents.alertsource": (True, True, True),
    "incidents.alertgroup": (False, False, True),
    "incidents.ingestoutbox": (False, False, True),
    "runbooks.runbook": (False, False, True),
    "executor.execution": (False, False, True),
    "executor.actionrequest": (False, False, False),
    "executor.approval": (False, False, False),
    "executor.target": (True, True, True),
    "executor.service": (True, True, True),
}


@pytest.mark.django_db
def test_each_admin_allows_what_it_should():
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    found = {}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if label in EXPECTED:
            found[label] = (
                model_admin.has_add_permission(request),
                model_admin.has_change_permission(request),
                model_admin.has_delete_permission(request),
            )
            assert model_admin.has_view_permission(request), label
    assert found == EXPECTED


@pytest.mark.django_db
def test_the_inlines_are_view_only(admin_client):
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    for model, model_admin in admin.site._registry.items():
        for inline in model_admin.get_inline_instances(request):
            label = f"{model._meta.label_lower}: {type(inline).__name__}"
            assert not inline.has_add_permission(request, None), label
            assert not inline.has_change_permission(request, None), label
            assert not inline.has_delete_permission(request, None), label


@pytest.mark.django_db
@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_every_change_list_renders(admin_client, label):
    app, model = label.split(".")
    assert admin_client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 200
