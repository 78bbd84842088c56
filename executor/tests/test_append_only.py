"""The timeline and the approvals hold as append-only in the database, not only in save()."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from executor import services
from executor.models import Approval
from executor.tests.approval_helpers import make_approver, notify_request
from incidents.choices import TimelineKind
from incidents.events import timeline_record
from incidents.models import TimelineEvent
from incidents.tests.factories import IncidentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_slack_notifications")]


def test_a_queryset_update_of_a_timeline_row_is_refused():
    incident = IncidentFactory()
    event = timeline_record(incident=incident, kind=TimelineKind.NOTE, message="first")
    with pytest.raises(DatabaseError), transaction.atomic():
        TimelineEvent.objects.filter(pk=event.pk).update(message="rewritten")
    assert TimelineEvent.objects.get(pk=event.pk).message == "first"


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SQLite guards UPDATE only")
def test_a_queryset_delete_of_a_timeline_row_is_refused_on_postgresql():
    event = timeline_record(incident=IncidentFactory(), kind=TimelineKind.NOTE, message="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        TimelineEvent.objects.filter(pk=event.pk)._raw_delete(connection.alias)
    assert TimelineEvent.objects.filter(pk=event.pk).exists()


def test_an_incident_with_events_is_protected_not_cascaded():
    incident = IncidentFactory()
    timeline_record(incident=incident, kind=TimelineKind.NOTE, message="kept")
    with pytest.raises(ProtectedError):
        incident.delete()
    assert incident.timeline.count() == 1


def _approval() -> Approval:
    request = notify_request()
    approver = make_approver("alice")
    services.action_request_reject(action_request=request, approver=approver, reason="no")
    return Approval.objects.get(action_request=request)


def test_a_queryset_update_of_an_approval_is_refused():
    approval = _approval()
    with pytest.raises(DatabaseError), transaction.atomic():
        Approval.objects.filter(pk=approval.pk).update(reason="changed my mind")
    assert Approval.objects.get(pk=approval.pk).reason == "no"


def test_approvals_protect_their_request_and_incident():
    approval = _approval()
    with pytest.raises(ProtectedError):
        approval.action_request.delete()
    incident = approval.action_request.incident
    with pytest.raises(ProtectedError):
        incident.delete()
    assert Approval.objects.filter(pk=approval.pk).exists()
