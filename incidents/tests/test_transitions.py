"""The one transition helper, and the incident's table through it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.choices import INCIDENT_TRANSITIONS, IncidentStatus
from incidents.models import Incident
from incidents.services import IncidentError, incident_transition
from incidents.tests.factories import IncidentFactory
from incidents.transitions import IllegalTransition, check_transition, transition

pytestmark = pytest.mark.django_db


def _move(incident: Incident, from_status, to_status: str, **fields) -> bool:
    return transition(
        Incident,
        pk=incident.pk,
        table=INCIDENT_TRANSITIONS,
        from_status=from_status,
        to_status=to_status,
        **fields,
    )


def test_every_status_has_a_row_and_every_move_ends_in_a_status():
    assert set(INCIDENT_TRANSITIONS) == set(IncidentStatus.values)
    for targets in INCIDENT_TRANSITIONS.values():
        assert targets <= set(IncidentStatus.values)


def test_an_allowed_move_is_applied_with_its_fields_and_stamps_updated_at():
    incident = IncidentFactory(status=IncidentStatus.INVESTIGATING)
    long_ago = timezone.now() - timedelta(days=1)
    Incident.objects.filter(pk=incident.pk).update(updated_at=long_ago)
    resolved_at = timezone.now()
    assert _move(
        incident, IncidentStatus.INVESTIGATING, IncidentStatus.RESOLVED, resolved_at=resolved_at
    )
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == resolved_at
    assert incident.updated_at > long_ago


def test_a_move_the_table_forbids_raises_and_changes_nothing():
    incident = IncidentFactory(status=IncidentStatus.RESOLVED)
    with pytest.raises(IllegalTransition, match="Incident cannot move from resolved to identified"):
        _move(incident, IncidentStatus.RESOLVED, IncidentStatus.IDENTIFIED)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_one_forbidden_source_among_several_is_refused():
    incident = IncidentFactory(status=IncidentStatus.IDENTIFIED)
    with pytest.raises(IllegalTransition):
        _move(incident, [IncidentStatus.IDENTIFIED, IncidentStatus.RESOLVED], "identified")
    with pytest.raises(IllegalTransition):
        check_transition(INCIDENT_TRANSITIONS, "no-such-status", IncidentStatus.RESOLVED)


def test_a_lost_race_returns_false_and_leaves_the_winner_s_move():
    incident = IncidentFactory(status=IncidentStatus.INVESTIGATING)
    # Someone else moved it after this caller read `investigating`.
    assert _move(incident, IncidentStatus.INVESTIGATING, IncidentStatus.MONITORING)
    assert not _move(incident, IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.MONITORING


def test_the_incident_service_reports_a_forbidden_move_and_a_lost_race_apart(monkeypatch):
    incident = IncidentFactory(status=IncidentStatus.RESOLVED)
    with pytest.raises(IncidentError, match="resolved cannot move to identified"):
        incident_transition(incident=incident, to_status=IncidentStatus.IDENTIFIED)

    import incidents.services as incident_services

    # The row changes between the locked read and the conditional update.
    def racing(model, **kwargs):
        Incident.objects.filter(pk=kwargs["pk"]).update(status=IncidentStatus.MONITORING)
        return transition(model, **kwargs)

    monkeypatch.setattr(incident_services, "transition", racing)
    with pytest.raises(IncidentError, match="changed meanwhile"):
        incident_transition(incident=incident, to_status=IncidentStatus.INVESTIGATING)
    # Nothing was recorded for the move that lost.
    assert not incident.timeline.filter(kind="status_changed").exists()
