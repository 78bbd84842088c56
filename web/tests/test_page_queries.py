"""The incident page's query count with a realistic incident: a bound, not just no growth."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from coordination.models import WarRoom
from evidence.models import Evidence, EvidenceSet
from executor.choices import ActionStatus, CheckOutcome, ExecutionStatus, Safety
from executor.models import ActionRequest, CheckRun, SafeModeChange
from executor.tests.factories import ExecutionFactory, responder
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
from runbooks.tests.factories import ready_runbook, sample_document

HX = {"HTTP_HX_REQUEST": "true"}
# session, user, the incident (with safe mode, the viewer's permissions, the users a
# role may go to, the war room), the versions (with the shown one's execution and
# checks), actions, timeline, status updates, alerts, evidence
PAGE_QUERIES = 10
# session, user, incident, versions, actions, timeline
POLL_QUERIES = 6


def _realistic_incident() -> Incident:
    """Two versions, the shown one with checks and actions by several people, alerts,
    a long timeline and status updates: what a page looks like an hour in."""
    people = UserFactory.create_batch(4)
    commander, comms, tech, scribe = people
    incident = IncidentFactory(commander=commander, comms_lead=comms, tech_lead=tech, scribe=scribe)
    diagnosed = sample_document(hypotheses=["A bad deploy"])
    diagnosed["diagnosis"] = {
        "status": "diagnosed",
        "hypotheses": [
            {
                "category": "deployment_issue",
                "component": "checkout",
                "statement": "The v2.14 deploy",
                "evidence": ["E1"],
                "confidence": 0.6,
            }
        ],
    }
    ready_runbook(incident=incident, document=sample_document(hypotheses=["An older theory"]))
    shown = ready_runbook(incident=incident, version=2, document=diagnosed)
    for runbook in (shown.incident.runbooks.get(version=1), shown):
        ExecutionFactory(runbook=runbook, status=ExecutionStatus.FAILED, error="first try")
        execution = ExecutionFactory(runbook=runbook, status=ExecutionStatus.DONE)
        CheckRun.objects.bulk_create(
            CheckRun(
                execution=execution,
                check_id=f"v{runbook.version}_check_{i}",
                action="http.health_check",
                outcome=CheckOutcome.WARN if i == 2 else CheckOutcome.OK,
                summary=f"summary {i}",
                output=f"HTTP/1.1 200 OK ({i})",
                duration_ms=10 + i,
                position=5 - i,
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
    evidence_set = EvidenceSet.objects.create(incident=incident, onset=timezone.now())
    Evidence.objects.bulk_create(
        Evidence(
            evidence_set=evidence_set,
            incident=incident,
            key=f"E{i}",
            collector=["changes", "metrics", "logs", "similar"][i % 4],
            summary=f"evidence {i}",
            data={"template": "GET <*>", "count": 3, "signal": "latency", "id": incident.pk},
            status="ok",
        )
        for i in range(1, 13)
    )
    WarRoom.objects.create(incident=incident, channel_id="C1", channel_name="inc-war-room")
    SafeModeChange.objects.create(enabled=True, actor=commander, reason="database failover")
    return incident


def _queries(client, url: str, **extra) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def _viewer():
    """A responder who also approves: every permission-dependent part of the page shows."""
    viewer = responder("viewer")
    viewer.is_staff = True
    viewer.save(update_fields=["is_staff"])
    approvers = Group.objects.create(name="page-approvers")
    approvers.permissions.add(Permission.objects.get(codename="approve_actionrequest"))
    viewer.groups.add(approvers)
    viewer.user_permissions.add(Permission.objects.get(codename="publish_status"))
    return viewer


@pytest.mark.django_db
def test_incident_page_and_poll_stay_within_their_query_budgets(client, settings):
    settings.SLACK_BOT_TOKEN = "xoxb-test"  # the header shows the war room
    client.force_login(_viewer())
    incident = _realistic_incident()
    detail = reverse("incidents:detail", args=[incident.pk])
    live = reverse("incidents:live", args=[incident.pk])
    _queries(client, detail)  # the session and content types are read once per process
    for params in ({}, {"version": 1}, {"version": 2}, {"version": 2, "compare": 1}):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        sql = _queries(client, detail, QUERY_STRING=query)
        assert len(sql) <= PAGE_QUERIES, (params, len(sql), sql)
    sql = _queries(client, live, **HX)
    assert len(sql) <= POLL_QUERIES, (len(sql), sql)


@pytest.mark.django_db
def test_what_the_page_nests_in_its_queries_is_what_it_shows(client, settings):
    """The checks, the safe-mode switch, the permissions, the role candidates, the war room
    and the evidence come nested in other rows: the page shows each of them correctly."""
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    client.force_login(_viewer())
    incident = _realistic_incident()
    html = client.get(reverse("incidents:detail", args=[incident.pk]), {"version": 1}).content
    html = html.decode()
    # The latest execution of the version shown, its checks in position order.
    checks = [f"v1_check_{i}" for i in reversed(range(6))]
    positions = [html.index(f"<strong>{c}</strong>") for c in checks]
    assert positions == sorted(positions)
    assert "v2_check_0" not in html and "HTTP/1.1 200 OK (3)" in html and "15 ms" in html
    assert "first try" not in html  # an older execution's error
    assert "safe mode is on since" in html and "database failover" in html
    assert incident.commander.username in html.split("Safe mode:")[1].split("</div>")[0]
    assert "Leave safe mode" in html  # the viewer approves (staff and the group's permission)
    assert "#inc-war-room" in html
    for username in (incident.commander.username, incident.scribe.username, "viewer"):
        assert f">{username}</option>" in html  # the roles form's candidates
    assert "The v2.14 deploy" in html  # the diagnosis of the newest ready version
    assert "evidence 9" in html and "evidence 12" in html
    StatusUpdateFactory(incident=incident, audience="customer", body="We are looking into it")
    html = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "v2_check_0" in html and "v1_check_0" not in html
    assert "Review in the admin" in html  # the approval waits, and the viewer approves
    assert 'data-testid="publish"' in html  # the customer draft, and the viewer publishes


@pytest.mark.django_db
def test_a_viewer_without_permissions_sees_none_of_their_controls(client):
    client.force_login(UserFactory())
    incident = _realistic_incident()
    StatusUpdateFactory(incident=incident, audience="customer", body="We are looking into it")
    html = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "safe mode is on since" in html and "Leave safe mode" not in html
    assert 'data-testid="publish"' not in html
    assert "Review in the admin" not in html and "An approver decides" in html
