"""The one severity table: every severity has a row, and the pages read it."""

import pytest
from django.urls import reverse

from incidents.choices import SEVERITIES, Severity, severity_info
from incidents.tests.factories import UserFactory


def test_every_severity_has_one_row_and_only_sev1_and_sev2_page():
    assert list(SEVERITIES) == list(Severity.values)
    assert [s for s, info in SEVERITIES.items() if info.pages] == ["SEV1", "SEV2"]
    assert [s for s, info in SEVERITIES.items() if info.multiple_approvers] == ["SEV1", "SEV2"]
    assert all(info.label == Severity(s).label for s, info in SEVERITIES.items())
    assert severity_info("SEV9") == SEVERITIES["SEV3"]


def test_cadence_is_the_incident_commander_policy():
    """SEV1 every 15 min, SEV2 30, SEV3 60, SEV4 daily."""
    assert {s: info.update_every_minutes for s, info in SEVERITIES.items()} == {
        "SEV1": 15,
        "SEV2": 30,
        "SEV3": 60,
        "SEV4": 24 * 60,
    }


@pytest.mark.django_db
def test_a_sev3_is_overdue_after_an_hour_without_an_update():
    from datetime import timedelta

    from incidents.cadence import update_overdue_minutes
    from incidents.tests.factories import IncidentFactory

    incident = IncidentFactory(severity="SEV3")
    opened = incident.detected_at
    assert update_overdue_minutes(incident, opened + timedelta(minutes=59)) == 0
    assert update_overdue_minutes(incident, opened + timedelta(minutes=75)) == 15


def test_cadence_reads_once():
    assert [info.cadence for info in SEVERITIES.values()] == [
        "every 15 min",
        "every 30 min",
        "every 60 min",
        "daily",
    ]


@pytest.mark.django_db
def test_the_declare_page_says_each_cadence_once_and_the_colours_come_from_the_table(client):
    client.force_login(UserFactory())
    body = client.get(reverse("incidents:declare")).content.decode()
    assert "Track it; updates daily." in body
    assert "daily updates" not in body
    assert "All hands, page now; updates every 15 min." in body
    for severity, info in SEVERITIES.items():
        assert f"--{severity.lower()}: {info.colour};" in body
