"""Admin forms that edit JSON refuse non-finite numbers like every other JSON boundary."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from executor.models import Service, Target
from incidents.models import AlertSource
from incidents.tests.factories import UserFactory

HOSTILE = ['{"a": NaN}', '{"a": Infinity}', '{"a": [-Infinity]}', '{"a": 1e999}', "[-1e400]"]


def _form(model, data: dict):
    request = RequestFactory().post("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    form_class = admin.site._registry[model].get_form(request)
    return form_class(data=data)


@pytest.mark.django_db
@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize(
    ("model", "field", "base"),
    [
        (Target, "options", {"name": "db", "kind": "postgres", "base": "postgresql://h/db"}),
        (Service, "golden_signals", {"name": "checkout"}),
        (Service, "links", {"name": "checkout"}),
        (AlertSource, "severity_mapping", {"name": "am", "slug": "am", "kind": "alertmanager"}),
    ],
)
def test_non_finite_numbers_are_a_form_error(model, field, base, text):
    form = _form(model, {**base, field: text})
    assert not form.is_valid()
    assert field in form.errors
    assert model.objects.count() == 0


@pytest.mark.django_db
def test_finite_json_still_saves():
    form = _form(
        Target,
        {
            "name": "db",
            "kind": "postgres",
            "base": "postgresql://h/db",
            "options": '{"schemas": ["app"], "ratio": 0.5}',
            "enabled": "on",
        },
    )
    assert form.is_valid(), form.errors
    assert form.save().options == {"schemas": ["app"], "ratio": 0.5}
