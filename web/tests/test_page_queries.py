"""The incident page's query count with a realistic incident: a bound, not just no growth."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from executor.choices import ActionStatus, CheckOutcome, ExecutionStatus, Safety
from executor.models import ActionRequest, CheckRun
from executor.tests.factories import ExecutionFactory
from incidents.choices import TimelineKind
from incidents.events import timeline_record
from incidents.models import Incident
from incidents.tests.factories import (
    AlertFactory,
    AlertSourceFactory,
    IncidentFactory,
    StatusUpdateFactory,
    UserFactory,
)
from runbooks.tests.factories import ready_runbook

HX = {"HTTP_HX_REQUEST": "true"}
# session, user, incident, versions (the shown one in full), actions, execution, check
# runs, timeline, status updates, alerts, users, permissions, safe mode, evidence
PAGE_QUERIES = 14
POLL_QUERIES = 10  # the page less status updates, alerts and users


def _realistic_incident() -> Incident:
    """Two versions, the shown one with checks and actions by several people, alerts,
    a long timeline and status updates: what a page looks like an hour in."""
    people = UserFactory.create_batch(4)
    commander, comms, tech, scribe = people
    incident = IncidentFactory(commander=commander, comms_lead=comms, tech_lead=tech, scribe=scribe)
    ready_runbook(incident=incident)
    shown = ready_runbook(incident=incident, version=2)
    execution = ExecutionFactory(runbook=shown, status=ExecutionStatus.DONE)
    CheckRun.objects.bulk_create(
        CheckRun(
            execution=execution,
            check_id=f"check_{i}",
            action="http.health_check",
            outcome=CheckOutcome.OK,
            summary="ok",
            position=i,
        )
        for i in range(6)
    )
    statuses = [ActionStatus.PROPOSED, ActionStatus.SUCCEEDED, ActionStatus.AWAITING_APPROVAL]
    ActionRequest.objects.bulk_create(
        ActionRequest(
            runbook=shown,
            incident=incident,
            step_id=f"act_{i}",
            action="alert.notify",
            safety=Safety.REVERSIBLE,
            runbook_marked_safe=i % 2 == 0,
            status=statuses[i % 3],
            requested_by=people[i % 4],
            result={"summary": "done"},
            plan="Would record on the incident timeline",
        )
        for i in range(6)
    )
    source = AlertSourceFactory()
    for i in range(12):
        AlertFactory(source=source, incident=incident, fingerprint=f"fp-{i}")
    for i in range(60):
        timeline_record(
            incident=incident, kind=TimelineKind.NOTE, actor=people[i % 4], message=f"note {i}"
        )
    for i in range(6):
        StatusUpdateFactory(incident=incident, audience="internal", body="x", author=people[i % 4])
    return incident


def _queries(client, url: str, **extra) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.django_db
def test_incident_page_and_poll_stay_within_their_query_budgets(client):
    viewer = UserFactory()
    client.force_login(viewer)
    incident = _realistic_incident()
    detail = reverse("incidents:detail", args=[incident.pk])
    live = reverse("incidents:live", args=[incident.pk])
    _queries(client, detail)  # the session and content types are read once per process
    for params in ({}, {"version": 1}, {"version": 2}, {"version": 2, "compare": 1}):
        sql = _queries(client, detail, QUERY_STRING="&".join(f"{k}={v}" for k, v in params.items()))
        budget = PAGE_QUERIES + ("compare" in params)  # the compared version, for the diff
        assert len(sql) <= budget, (params, len(sql), sql)
    sql = _queries(client, live, **HX)
    assert len(sql) <= POLL_QUERIES, (len(sql), sql)
