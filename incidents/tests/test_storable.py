"""Outside text is cleaned of what PostgreSQL will not store before it gets there."""

import pytest

from incidents.services import incident_declare
from incidents.storable import clean_payload, clean_text


def test_nul_goes_and_a_lone_surrogate_becomes_a_question_mark():
    assert clean_text("a\x00b\ud800c") == "ab?c"
    assert clean_text("plain ünïcödé ✓") == "plain ünïcödé ✓"
    assert clean_payload({"k\x00": ["v\x00", ("\udfff", 1)], "n": 2.5, "z": None}) == {
        "k": ["v", ["?", 1]],
        "n": 2.5,
        "z": None,
    }


@pytest.mark.django_db
def test_a_declaration_with_a_nul_is_stored_without_it():
    incident = incident_declare(description="Disk\x00 full on db1\n\nsince 09:00", service="db")
    incident.refresh_from_db()
    assert incident.title == "Disk full on db1"
    assert "\x00" not in incident.description


@pytest.mark.django_db
def test_a_note_and_a_status_update_with_a_nul_are_stored_without_it():
    from incidents.models import StatusUpdate
    from incidents.services import incident_add_note, status_update_edit, status_update_post

    incident = incident_declare(description="Checkout errors", service="checkout")
    incident_add_note(incident=incident, text="rolled\x00 back")
    assert incident.timeline.filter(message__contains="rolled back").exists()
    status_update_post(incident=incident, audience="customer", body="Fixed\x00 soon")
    update = StatusUpdate.objects.get(incident=incident)
    assert update.body == "Fixed soon"
    status_update_edit(update=update, body="Fixed\x00 now")
    update.refresh_from_db()
    assert update.body == "Fixed now"
