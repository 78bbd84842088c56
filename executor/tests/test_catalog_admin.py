"""The service catalog in the admin: owners are typed one email per line, and checked."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from executor.models import Service

pytestmark = pytest.mark.django_db


def _form(**fields) -> dict:
    return {
        "name": "checkout",
        "team": "",
        "description": "",
        "links": "[]",
        "golden_signals": "{}",
        "dependencies": "[]",
        **fields,
    }


def test_owners_are_entered_one_per_line(admin_client):
    response = admin_client.post(
        reverse("admin:executor_service_add"),
        _form(owners="Ana@Example.com\nbo@example.com, ana@example.com\n\n"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Service.objects.get().owners == ["ana@example.com", "bo@example.com"]
    page = admin_client.get(
        reverse("admin:executor_service_change", args=[Service.objects.get().pk])
    ).content.decode()
    assert "ana@example.com\nbo@example.com</textarea>" in page


def test_a_bad_email_is_refused_and_nothing_saved(admin_client):
    response = admin_client.post(
        reverse("admin:executor_service_add"), _form(owners="ana@example.com\nnot-an-email")
    )
    assert response.status_code == 200
    assert "&#x27;not-an-email&#x27; is not an email address." in response.content.decode()
    assert not Service.objects.exists()


def test_the_model_refuses_what_is_not_a_list_of_emails():
    for owners in ("ana@example.com", [1], ["ana@example.com", "x"]):
        with pytest.raises(ValidationError):
            Service(name="s", owners=owners).full_clean()
    Service(name="s", owners=["ana@example.com"]).full_clean()
