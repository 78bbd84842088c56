"""The ops web UI through Django's test client: pages, forms, services behind them, query bounds."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from executor.choices import ActionStatus, CheckOutcome, ExecutionStatus, Safety
from executor.models import ActionRequest, CheckRun, Execution
from executor.services import execution_run
from executor.tests.factories import ActionRequestFactory, ExecutionFactory, responder
from incidents.choices import IncidentStatus, TimelineKind
from incidents.events import timeline_record
from incidents.models import Incident, StatusUpdate
from incidents.services import (
    IncidentError,
    incident_assign_role,
    incident_transition,
)
from incidents.tests.factories import (
    AlertFactory,
    AlertSourceFactory,
    IncidentFactory,
    StatusUpdateFactory,
    UserFactory,
)
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from runbooks.tests.factories import RunbookFactory, ready_runbook, sample_document
from web.status_drafts import status_update_draft

HX = {"HTTP_HX_REQUEST": "true"}

# A runbook the executor can really run here: a health check against a local HTTP
# server, a safe notification, an action the runbook itself marked unsafe, and a
# destructive one that needs a PostgreSQL target (blocked when there is none).
DOCUMENT = sample_document(
    hypotheses=["A bad deploy", "The database is saturated"],
    checks=[{"id": "check_health", "action": "http.health_check", "params": {}}],
    recommended_actions=[
        {
            "id": "notify_team",
            "action": "alert.notify",
            "safe": True,
            "params": {"message": "Looking into checkout latency"},
            "rationale": "Keep people informed.",
        },
        {
            "id": "page_vendor",
            "action": "alert.notify",
            "safe": False,
            "params": {"message": "Paging the vendor"},
            "rationale": "Costs money: a human decides.",
        },
    ],
    rollback_plan="Nothing to roll back: notifications only.",
)


@pytest.fixture
def user(db):
    return responder("alice")


@pytest.fixture
def client_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def health_url(http_server, settings):
    """A real /healthz for the demo http target to probe."""

    def ok(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    settings.SITE_URL = http_server(ok)
    return settings.SITE_URL


def run_pipeline(incident: Incident, document: dict = DOCUMENT, version: int = 1) -> Runbook:
    """A stored runbook, its checks run and its actions proposed by the real executor."""
    runbook = ready_runbook(document, incident=incident, version=version)
    execution_run(runbook_id=runbook.pk)
    return runbook


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- login ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_needs_a_login(client):
    incident = IncidentFactory()
    for url in (
        reverse("incidents:list"),
        reverse("incidents:declare"),
        reverse("incidents:detail", args=[incident.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    response = client.post(reverse("incidents:note", args=[incident.pk]), {"text": "x"})
    assert response.status_code == 302
    assert not incident.timeline.filter(kind=TimelineKind.NOTE).exists()
    # A poll after the session ended sends the whole window to the login page.
    response = client.get(reverse("incidents:live", args=[incident.pk]), **HX)
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_login_page_logs_in_and_lands_on_the_list(client, user):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests-only"})
    assert response.status_code == 302 and response["Location"] == reverse("incidents:list")


# --- declare ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_declare_queues_the_runbook_and_lands_on_the_incident(client_in, user, settings):
    settings.ANTHROPIC_API_KEY = ""
    page = client_in.get(reverse("incidents:declare"))
    body = text(page)
    # The policy is shown beside each severity choice.
    assert "Complete outage or data loss for many customers" in body
    assert "Minimal impact, cosmetic or internal" in body
    response = client_in.post(
        reverse("incidents:declare"),
        {
            "title": "Checkout 502s",
            "description": "Health check failing on checkout",
            "severity": "SEV2",
            "service": "checkout",
        },
    )
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:detail", args=[incident.pk])
    assert (incident.severity, incident.service, incident.created_by) == ("SEV2", "checkout", user)
    assert incident.runbooks.get().version == 1
    detail = text(client_in.get(response["Location"]))
    assert "Checkout 502s" in detail and "declared; the runbook is queued" in detail


@pytest.mark.django_db
def test_declare_without_a_title_keeps_what_was_typed(client_in):
    response = client_in.post(
        reverse("incidents:declare"),
        {"title": "", "description": "", "severity": "SEV1", "service": "payments-api"},
    )
    assert response.status_code == 200
    body = text(response)
    assert "Say what is broken" in body
    assert 'value="payments-api"' in body
    assert re.search(r'value="SEV1" checked', body)
    assert not Incident.objects.exists()


# --- list ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_open_incidents_first_with_their_state(client_in, user):
    now = timezone.now()
    old_open = IncidentFactory(title="Old open one", detected_at=now - timedelta(hours=5))
    new_resolved = IncidentFactory(title="Fresh resolved one", detected_at=now)
    incident_transition(incident=new_resolved, to_status=IncidentStatus.RESOLVED)
    old_open.commander = user
    old_open.save()
    ready_runbook(incident=old_open)

    body = text(client_in.get(reverse("incidents:list"), {"status": "all"}))
    assert body.index("Old open one") < body.index("Fresh resolved one")
    assert "v1 ready" in body and "alice" in body
    assert "5h 00m" in body

    # The default view shows open incidents only.
    default = text(client_in.get(reverse("incidents:list")))
    assert "Old open one" in default and "Fresh resolved one" not in default


@pytest.mark.django_db
def test_list_rows_escape_what_an_alert_wrote(client_in):
    incident = IncidentFactory(
        title='<script>alert(1)</script> & "quoted"', service="<b>web</b>", commander=None
    )
    body = client_in.get(reverse("incidents:list")).content.decode()
    assert "<script>alert(1)" not in body and "<b>web</b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in body
    assert "&lt;b&gt;web&lt;/b&gt;" in body
    assert f'href="{reverse("incidents:detail", args=[incident.pk])}"' in body
    assert '<td data-label="Commander">—</td>' in body


@pytest.mark.django_db
def test_list_suggests_the_catalogs_services_in_order(client_in):
    from executor.models import Service

    for name in ("payments", "checkout", "<b>web</b>"):
        Service.objects.create(name=name)
    body = client_in.get(reverse("incidents:list")).content.decode()
    datalist = body.split('<datalist id="service-names">')[1].split("</datalist>")[0]
    assert re.findall(r'<option value="([^"]*)">', datalist) == [
        "&lt;b&gt;web&lt;/b&gt;",
        "checkout",
        "payments",
    ]


@pytest.mark.django_db
def test_list_filters_search_and_mine(client_in, user):
    mine = IncidentFactory(title="Payments down", severity="SEV1", service="payments")
    incident_assign_role(incident=mine, role="scribe", user=user)
    IncidentFactory(title="Search slow", severity="SEV3", service="search")
    url = reverse("incidents:list")

    def titles(**params) -> set[str]:
        body = text(client_in.get(url, params))
        return {t for t in ("Payments down", "Search slow") if t in body}

    assert titles() == {"Payments down", "Search slow"}
    assert titles(severity="SEV1") == {"Payments down"}
    assert titles(service="search") == {"Search slow"}
    assert titles(q="slow") == {"Search slow"}
    assert titles(q=f"#{mine.pk}") == {"Payments down"}
    assert titles(mine="on") == {"Payments down"}
    assert titles(status="resolved") == set()
    assert titles(status="nonsense") == {"Payments down", "Search slow"}  # falls back to open


@pytest.mark.django_db
def test_list_paginates_across_open_and_resolved(client_in):
    now = timezone.now()
    for i in range(30):
        IncidentFactory(title=f"open-{i:02d}", detected_at=now - timedelta(minutes=i))
    for i in range(5):
        incident = IncidentFactory(title=f"closed-{i:02d}", detected_at=now + timedelta(minutes=i))
        incident_transition(incident=incident, to_status=IncidentStatus.RESOLVED)
    url = reverse("incidents:list")
    first = text(client_in.get(url, {"status": "all"}))
    second = text(client_in.get(url, {"status": "all", "page": 2}))
    assert "Page 1 of 2 · 35 incidents" in first
    assert "open-00" in first and "open-24" in first and "open-25" not in first
    assert "closed-" not in first
    assert "open-25" in second and "open-29" in second
    # Resolved ones follow, newest first.
    assert second.index("open-29") < second.index("closed-04") < second.index("closed-00")
    assert "status=all&amp;page=1" in second


# --- incident page ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_incident_page_shows_runbook_checks_and_actions(client_in, health_url):
    incident = IncidentFactory(title="Checkout latency", service="checkout")
    run_pipeline(incident)
    response = client_in.get(reverse("incidents:detail", args=[incident.pk]))
    body = text(response)
    assert "performance_degradation" in body and "checkout-db" in body and "70%" in body
    assert "A bad deploy" in body and "Nothing to roll back: notifications only." in body
    # The health check really ran against the local server.
    check = CheckRun.objects.get()
    assert check.outcome == CheckOutcome.OK, check.summary
    assert "check_health" in body and check.summary in body
    notify = ActionRequest.objects.get(step_id="notify_team")
    vendor = ActionRequest.objects.get(step_id="page_vendor")
    assert (notify.status, vendor.status) == (ActionStatus.PROPOSED, ActionStatus.AWAITING_APPROVAL)
    card = body[body.index('data-step-id="notify_team"') :]
    assert "SAFE" in card[:600] and "reversible per the executor" in card
    assert "Would record on the incident timeline" in card  # the dry run
    assert reverse("incidents:action_run", args=[incident.pk, notify.pk]) in body
    unsafe = body[body.index('data-step-id="page_vendor"') :]
    assert "UNSAFE" in unsafe[:600] and "the runbook marked this action unsafe" in unsafe
    assert "Waiting for approval" in unsafe
    assert reverse("admin:executor_actionrequest_change", args=[vendor.pk]) in unsafe
    assert reverse("incidents:action_run", args=[incident.pk, vendor.pk]) not in body
    # Settled but waiting for an approver: a slow poll, not the fast one.
    assert 'data-poll="10"' in body


@pytest.mark.django_db(transaction=True)
def test_running_a_safe_action_shows_its_result_in_the_live_parts(client_in, user, health_url):
    incident = IncidentFactory()
    run_pipeline(incident)
    notify = ActionRequest.objects.get(step_id="notify_team")
    response = client_in.post(
        reverse("incidents:action_run", args=[incident.pk, notify.pk]),
        HTTP_HX_CURRENT_URL=f"http://testserver/incidents/{incident.pk}/",
        **HX,
    )
    assert response.status_code == 200
    notify.refresh_from_db()
    assert notify.status == ActionStatus.SUCCEEDED and notify.requested_by == user
    body = text(response)
    assert 'id="runbook-panel" class="card runbook" hx-swap-oob="true"' in body
    assert 'data-testid="action-result"' in body and notify.result["summary"] in body
    assert "notify_team: succeeded." in body  # the message
    assert incident.timeline.filter(kind=TimelineKind.ACTION_STATUS).count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_unsafe_action_cannot_be_run_from_the_page(client_in, health_url):
    incident = IncidentFactory()
    run_pipeline(incident)
    vendor = ActionRequest.objects.get(step_id="page_vendor")
    response = client_in.post(
        reverse("incidents:action_run", args=[incident.pk, vendor.pk]), follow=True
    )
    vendor.refresh_from_db()
    assert vendor.status == ActionStatus.AWAITING_APPROVAL
    assert "page_vendor: This action needs approval before it can run." in text(response)


@pytest.mark.django_db
def test_another_incidents_action_is_not_found(client_in):
    runbook = ready_runbook()
    action = ActionRequestFactory(runbook=runbook, step_id="a", action="alert.notify")
    other = IncidentFactory()
    response = client_in.post(reverse("incidents:action_run", args=[other.pk, action.pk]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_page_polls_while_work_runs_and_stops_when_settled(client_in):
    incident = IncidentFactory()
    RunbookFactory(incident=incident, status=RunbookStatus.GENERATING)
    live = reverse("incidents:live", args=[incident.pk])
    body = text(client_in.get(reverse("incidents:detail", args=[incident.pk])))
    assert f'hx-get="{live}" hx-trigger="every 2s"' in body
    assert "Runbook v1 is generating" in body

    Runbook.objects.filter(incident=incident).update(status=RunbookStatus.READY, artifact=DOCUMENT)
    runbook = Runbook.objects.get(incident=incident)
    execution = ExecutionFactory(runbook=runbook, status=ExecutionStatus.RUNNING)
    poll = text(client_in.get(live, **HX))
    assert 'id="ticker"' in poll and 'hx-trigger="every 2s"' in poll
    assert "Running 1 checks" in poll

    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.DONE)
    poll = text(client_in.get(live, **HX))
    assert 'data-poll=""' in poll and "hx-trigger" not in poll.split('id="ticker"')[1][:300]


@pytest.mark.django_db
def test_version_picker_and_diff(client_in):
    incident = IncidentFactory()
    ready_runbook(sample_document(confidence=0.4), incident=incident, version=1)
    ready_runbook(sample_document(confidence=0.9), incident=incident, version=2)
    url = reverse("incidents:detail", args=[incident.pk])
    latest = text(client_in.get(url))
    assert 'data-version="2"' in latest and "90%" in latest
    old = text(client_in.get(url, {"version": 1}))
    assert 'data-version="1"' in old and "40%" in old and "the newest is" in old
    diff = text(client_in.get(url, {"version": 2, "compare": 1}))
    assert '<span class="d-del">- &quot;confidence&quot;: 0.4,</span>' in diff
    assert '<span class="d-add">+ &quot;confidence&quot;: 0.9,</span>' in diff
    assert "Changes from v1 to v2" in diff
    # A poll from that page keeps showing what the responder picked.
    poll = text(
        client_in.get(
            reverse("incidents:live", args=[incident.pk]),
            HTTP_HX_CURRENT_URL=f"http://testserver{url}?version=1",
            **HX,
        )
    )
    assert 'data-version="1"' in poll


@pytest.mark.django_db(transaction=True)
def test_regenerate_adds_a_version_and_shows_it(client_in, settings, health_url):
    settings.ANTHROPIC_API_KEY = ""
    incident = IncidentFactory(title="Health check failing on the web app", service="web")
    run_pipeline(incident)
    response = client_in.post(
        reverse("incidents:regenerate", args=[incident.pk]),
        HTTP_HX_CURRENT_URL=f"http://testserver/incidents/{incident.pk}/?version=1",
        **HX,
    )
    assert incident.runbooks.count() == 2
    assert response["HX-Replace-Url"] == reverse("incidents:detail", args=[incident.pk])
    assert 'data-version="2"' in text(response)


# --- lifecycle --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_allowed_transitions_are_offered_and_others_are_refused(client_in):
    incident = IncidentFactory()
    url = reverse("incidents:detail", args=[incident.pk])
    body = text(client_in.get(url))
    for value in ("identified", "monitoring", "resolved"):
        assert f'name="to_status" value="{value}"' in body
    assert 'name="to_status" value="investigating"' not in body

    client_in.post(reverse("incidents:transition", args=[incident.pk]), {"to_status": "resolved"})
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED and incident.resolved_at
    body = text(client_in.get(url))
    assert 'name="to_status" value="investigating"' in body and ">Reopen<" in body
    assert 'name="to_status" value="monitoring"' not in body
    assert 'data-testid="ttr"' in body and 'data-testid="mtta"' in body

    response = client_in.post(
        reverse("incidents:transition", args=[incident.pk]), {"to_status": "monitoring"}, **HX
    )
    assert "An incident that is resolved cannot move to monitoring." in text(response)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


@pytest.mark.django_db
def test_acknowledge_and_severity(client_in, user):
    incident = IncidentFactory(detected_at=timezone.now() - timedelta(minutes=7))
    body = text(client_in.get(reverse("incidents:detail", args=[incident.pk])))
    assert "not acknowledged" in body and 'data-testid="mtta"' not in body
    response = client_in.post(reverse("incidents:acknowledge", args=[incident.pk]), **HX)
    body = text(response)
    assert 'data-testid="mtta">7m<' in body and "not acknowledged" not in body
    response = client_in.post(
        reverse("incidents:severity", args=[incident.pk]), {"severity": "SEV1"}, **HX
    )
    incident.refresh_from_db()
    assert incident.severity == "SEV1" and "Severity is SEV1." in text(response)
    response = client_in.post(
        reverse("incidents:severity", args=[incident.pk]), {"severity": "SEV9"}, **HX
    )
    assert "Unknown severity &#x27;SEV9&#x27;." in text(response)
    kinds = set(incident.timeline.values_list("kind", flat=True))
    assert {TimelineKind.ACKNOWLEDGED, TimelineKind.SEVERITY_CHANGED} <= kinds


# --- notes, roles, status updates ----------------------------------------------------------------


@pytest.mark.django_db
def test_note_goes_to_the_timeline_newest_first(client_in):
    incident = IncidentFactory()
    timeline_record(incident=incident, kind=TimelineKind.NOTE, message="first note")
    response = client_in.post(
        reverse("incidents:note", args=[incident.pk]), {"text": "second note"}, **HX
    )
    body = text(response)
    assert body.index("second note") < body.index("first note")
    event = incident.timeline.order_by("-id").first()
    assert (event.message, event.actor.username) == ("second note", "alice")
    # The note box comes back empty.
    assert re.search(r'<textarea name="text" id="id_note_text"[^>]*></textarea>', body)


@pytest.mark.django_db
def test_empty_note_is_refused_next_to_the_box(client_in):
    incident = IncidentFactory()
    response = client_in.post(reverse("incidents:note", args=[incident.pk]), {"text": "  "}, **HX)
    body = text(response)
    assert 'id="note-box"' in body and "A note needs some text." in body
    assert not incident.timeline.filter(kind=TimelineKind.NOTE).exists()


@pytest.mark.django_db
def test_assign_roles_shows_them_in_the_header(client_in, user):
    bob = UserFactory(username="bob")
    incident = IncidentFactory()
    response = client_in.post(
        reverse("incidents:roles", args=[incident.pk]),
        {"commander": user.pk, "comms_lead": bob.pk, "tech_lead": "", "scribe": ""},
        **HX,
    )
    incident.refresh_from_db()
    assert (incident.commander, incident.comms_lead, incident.tech_lead) == (user, bob, None)
    body = text(response)
    assert "<dt>Commander</dt><dd>alice</dd>" in body and "<dt>Comms</dt><dd>bob</dd>" in body
    messages = list(
        incident.timeline.filter(kind=TimelineKind.ROLE_ASSIGNED).values_list("message", flat=True)
    )
    assert sorted(messages) == ["alice is now incident commander", "bob is now communications lead"]
    # Saving the same roles again records nothing.
    client_in.post(
        reverse("incidents:roles", args=[incident.pk]),
        {"commander": user.pk, "comms_lead": bob.pk},
    )
    assert incident.timeline.filter(kind=TimelineKind.ROLE_ASSIGNED).count() == 2


@pytest.mark.django_db
def test_roles_refuse_an_inactive_user(user):
    gone = UserFactory(username="gone", is_active=False)
    incident = IncidentFactory()
    with pytest.raises(IncidentError, match="active user"):
        incident_assign_role(incident=incident, role="commander", user=gone, actor=user)
    with pytest.raises(IncidentError, match="Unknown role"):
        incident_assign_role(incident=incident, role="king", user=user)


@pytest.mark.django_db(transaction=True)
def test_status_update_templates_are_filled_from_the_incident(client_in, user, health_url):
    incident = IncidentFactory(title="Checkout latency", service="checkout", severity="SEV2")
    incident_assign_role(incident=incident, role="commander", user=user)
    run_pipeline(incident)
    internal = status_update_draft(incident=incident, audience="internal")
    assert "[SEV2] Checkout latency" in internal and "IC: alice" in internal
    assert "hypothesis: A bad deploy" in internal and "Next update within 30 minutes." in internal
    customer = status_update_draft(incident=incident, audience="customer")
    assert "investigating reports of a problem affecting checkout" in customer
    # Nothing internal leaks into the customer notice.
    assert "alice" not in customer and "deploy" not in customer and "SEV2" not in customer
    executive = status_update_draft(incident=incident, audience="executive")
    assert "Incident commander: alice." in executive and "confidence 70%" in executive

    response = client_in.get(
        reverse("incidents:draft", args=[incident.pk]), {"audience": "customer"}, **HX
    )
    assert "affecting checkout" in text(response) and "Nothing is sent anywhere" in text(response)


@pytest.mark.django_db
def test_posting_a_status_update_records_it(client_in, user):
    incident = IncidentFactory()
    response = client_in.post(
        reverse("incidents:status_update", args=[incident.pk]),
        {"audience": "customer", "body": "We are looking into it."},
        **HX,
    )
    update = StatusUpdate.objects.get()
    assert (update.audience, update.body, update.author) == (
        "customer",
        "We are looking into it.",
        user,
    )
    event = incident.timeline.get(kind=TimelineKind.STATUS_UPDATE)
    assert event.payload["sent"] is False
    assert "It was not sent anywhere." in text(response)


@pytest.mark.django_db
def test_bad_status_update_keeps_the_text(client_in):
    incident = IncidentFactory()
    response = client_in.post(
        reverse("incidents:status_update", args=[incident.pk]),
        {"audience": "press-release", "body": "Draft I spent ten minutes on"},
    )
    assert response.status_code == 200
    body = text(response)
    assert "Draft I spent ten minutes on" in body and "Select a valid choice" in body
    assert not StatusUpdate.objects.exists()


# --- bounded queries ------------------------------------------------------------------------------


def _busy_incident(n: int, user) -> Incident:
    """An incident with n checks, n actions, n timeline rows, n status updates, and roles."""
    incident = IncidentFactory(commander=user, comms_lead=user, tech_lead=user, scribe=user)
    runbook = ready_runbook(incident=incident)
    ready_runbook(incident=incident, version=2)
    execution = ExecutionFactory(runbook=runbook, status=ExecutionStatus.DONE)
    CheckRun.objects.bulk_create(
        CheckRun(
            execution=execution,
            check_id=f"check_{i}",
            action="http.health_check",
            outcome=CheckOutcome.OK,
            summary="ok",
            output="200",
            position=i,
        )
        for i in range(n)
    )
    ActionRequest.objects.bulk_create(
        ActionRequest(
            runbook=runbook,
            incident=incident,
            step_id=f"act_{i}",
            action="alert.notify",
            safety=Safety.REVERSIBLE,
            runbook_marked_safe=i % 2 == 0,
            status=[ActionStatus.PROPOSED, ActionStatus.SUCCEEDED, ActionStatus.AWAITING_APPROVAL][
                i % 3
            ],
            requested_by=user,
            result={"summary": "done"},
            plan="Would record on the incident timeline",
        )
        for i in range(n)
    )
    for i in range(n):
        timeline_record(incident=incident, kind=TimelineKind.NOTE, actor=user, message=f"note {i}")
        StatusUpdateFactory(incident=incident, audience="internal", body="x", author=user)
    return incident


def _count(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_incident_page_queries_do_not_grow_with_rows(
    client_in, user, django_assert_max_num_queries
):
    small = _busy_incident(1, user)
    big = _busy_incident(50, user)
    UserFactory.create_batch(20)
    for incident in (small, big):
        url = reverse("incidents:detail", args=[incident.pk])
        with django_assert_max_num_queries(20):
            assert client_in.get(url, {"version": 1, "compare": 2}).status_code == 200
    detail = [_count(client_in, reverse("incidents:detail", args=[i.pk])) for i in (small, big)]
    live = [_count(client_in, reverse("incidents:live", args=[i.pk]), **HX) for i in (small, big)]
    assert detail[0] == detail[1], detail
    assert live[0] == live[1], live


@pytest.mark.django_db
def test_list_page_queries_do_not_grow_with_rows(client_in, user, django_assert_max_num_queries):
    _busy_incident(1, user)
    url = reverse("incidents:list")
    one = _count(client_in, url, QUERY_STRING="status=all")
    for _ in range(60):
        incident = IncidentFactory(commander=user)
        ready_runbook(incident=incident)
    many = _count(client_in, url, QUERY_STRING="status=all")
    assert one == many, (one, many)
    # Session, user, each part's ids (which count it too), the page's rows, and what
    # the page shows around them (safe mode, the viewer's permissions, the catalog's
    # service names) in one.
    with django_assert_max_num_queries(6):
        client_in.get(url, {"status": "all", "page": 3, "mine": "on"})


@pytest.mark.django_db(transaction=True)
def test_expired_approval_request_can_be_asked_for_again(client_in, user, health_url):
    incident = IncidentFactory()
    run_pipeline(incident)
    vendor = ActionRequest.objects.get(step_id="page_vendor")
    ActionRequest.objects.filter(pk=vendor.pk).update(status=ActionStatus.EXPIRED)
    url = reverse("incidents:action_reask", args=[incident.pk, vendor.pk])
    body = text(client_in.get(reverse("incidents:detail", args=[incident.pk])))
    assert "expired unanswered" in body and url in body
    response = client_in.post(url, **HX)
    vendor.refresh_from_db()
    assert vendor.status == ActionStatus.AWAITING_APPROVAL and vendor.requested_by == user
    assert "page_vendor: approval requested again." in text(response)
    # Asking again for one that is not expired says why not.
    response = client_in.post(url, **HX)
    assert "only an expired request can be asked for again" in text(response)


@pytest.mark.django_db
def test_incident_page_shows_its_alerts_with_labels_and_source_links(client):
    client.force_login(UserFactory())
    incident = IncidentFactory()
    source = AlertSourceFactory(
        name="Prod AM", slug="prod-am", kind="alertmanager", secret_env="AM_TOKEN"
    )
    AlertFactory(
        source=source,
        incident=incident,
        dedup_key="fp1",
        fingerprint="fp1",
        status="firing",
        severity="SEV2",
        title="HighErrorRate <script>",
        service="checkout",
        labels={"alertname": "HighErrorRate", "instance": "web-1"},
        source_url="https://prom.example/graph?g0.expr=x",
        count=3,
    )
    body = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'id="alerts"' in body
    assert "HighErrorRate &lt;script&gt;" in body  # escaped, never markup
    assert "alertname=HighErrorRate" in body
    assert 'href="https://prom.example/graph?g0.expr=x"' in body
    assert "seen 3×" in body


# --- hostile query strings, admin, automatic transitions, double regeneration ---------------


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["²", "#²", "1²", "9" * 5000, "#" + "9" * 5000])
def test_odd_digits_in_the_query_string_are_not_a_500(client_in, value):
    incident = IncidentFactory()
    assert client_in.get(reverse("incidents:list"), {"q": value}).status_code == 200
    url = reverse("incidents:detail", args=[incident.pk])
    assert client_in.get(url, {"version": value}).status_code == 200
    assert client_in.get(url, {"version": "1", "compare": value}).status_code == 200
    assert client_in.get(url, {"compare": value}).status_code == 200


@pytest.mark.django_db
def test_search_by_number_still_finds_the_incident(client_in):
    incident = IncidentFactory(title="Something else")
    body = text(client_in.get(reverse("incidents:list"), {"q": f"#{incident.pk}", "status": "all"}))
    assert "Something else" in body


@pytest.mark.django_db
def test_admin_cannot_edit_severity_or_roles(admin_client, user):
    incident = IncidentFactory(commander=user)
    body = admin_client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))
    assert body.status_code == 200
    for name in ("severity", "commander", "comms_lead", "tech_lead", "scribe"):
        assert f'name="{name}"' not in body.content.decode(), name


@pytest.mark.django_db
def test_the_systems_transition_does_not_acknowledge(user):
    incident = IncidentFactory()
    incident_transition(incident=incident, to_status=IncidentStatus.MONITORING, actor=None)
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
    assert not incident.timeline.filter(kind=TimelineKind.ACKNOWLEDGED).exists()


@pytest.mark.django_db
def test_a_persons_transition_acknowledges_with_a_timeline_row(user):
    incident = IncidentFactory()
    incident_transition(incident=incident, to_status=IncidentStatus.IDENTIFIED, actor=user)
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None
    acks = incident.timeline.filter(kind=TimelineKind.ACKNOWLEDGED)
    assert [a.actor for a in acks] == [user]
    # A second move does not acknowledge twice.
    incident_transition(incident=incident, to_status=IncidentStatus.MONITORING, actor=user)
    assert incident.timeline.filter(kind=TimelineKind.ACKNOWLEDGED).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [RunbookStatus.QUEUED, RunbookStatus.GENERATING])
def test_regenerate_refuses_while_a_version_is_being_generated(client_in, status):
    incident = IncidentFactory()
    RunbookFactory(incident=incident, status=status)
    response = client_in.post(reverse("incidents:regenerate", args=[incident.pk]), **HX)
    assert response.status_code == 200
    assert "A runbook version is already being generated." in text(response)
    assert incident.runbooks.count() == 1


# --- responders -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_plain_user_may_look_but_not_act(client, health_url):
    incident = IncidentFactory(severity="SEV3")
    run_pipeline(incident)
    notify = ActionRequest.objects.get(step_id="notify_team")
    client.force_login(UserFactory(username="viewer"))
    for name in ("incidents:list", "incidents:declare"):
        assert client.get(reverse(name)).status_code == 200
    assert client.get(reverse("incidents:detail", args=[incident.pk])).status_code == 200
    acts = [
        (reverse("incidents:declare"), {"title": "x", "severity": "SEV1"}),
        (reverse("incidents:acknowledge", args=[incident.pk]), {}),
        (reverse("incidents:severity", args=[incident.pk]), {"severity": "SEV1"}),
        (reverse("incidents:note", args=[incident.pk]), {"body": "hello"}),
        (reverse("incidents:transition", args=[incident.pk]), {"status": "resolved"}),
        (reverse("incidents:roles", args=[incident.pk]), {}),
        (reverse("incidents:status_update", args=[incident.pk]), {"body": "all good"}),
        (reverse("incidents:regenerate", args=[incident.pk]), {}),
        (reverse("incidents:action_run", args=[incident.pk, notify.pk]), {}),
    ]
    for url, data in acts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "Only responders may act on incidents" in response.content.decode()
    incident.refresh_from_db()
    notify.refresh_from_db()
    assert incident.severity == "SEV3" and incident.acknowledged_at is None
    assert notify.status == ActionStatus.PROPOSED
    assert incident.runbooks.count() == 1
    assert Incident.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_staff_member_outside_the_group_may_not_act_either(client):
    incident = IncidentFactory(severity="SEV3")
    client.force_login(UserFactory(username="staffer", is_staff=True))
    response = client.post(reverse("incidents:severity", args=[incident.pk]), {"severity": "SEV1"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.severity == "SEV3"


@pytest.mark.django_db(transaction=True)
def test_a_responder_and_a_superuser_may_act(client):
    from django.contrib.auth import get_user_model

    incident = IncidentFactory(severity="SEV3")
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    for user, severity in ((responder("carol"), "SEV2"), (admin, "SEV1")):
        client.force_login(user)
        response = client.post(
            reverse("incidents:severity", args=[incident.pk]), {"severity": severity}
        )
        assert response.status_code in (200, 302)
        incident.refresh_from_db()
        assert incident.severity == severity
