"""The learning pages through the test client: postmortem editor, exports, metrics, reports."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from executor.choices import ActionStatus
from executor.tests.factories import ActionRequestFactory, responder
from incidents.services import incident_add_note
from incidents.tests.factories import (
    AlertFactory,
    AlertSourceFactory,
    IncidentFactory,
    UserFactory,
)
from learning.choices import PostmortemStatus
from learning.models import Handoff
from learning.reports import handoff_report, post_weekly_report, weekly_report
from learning.selectors import similar_past_incidents, similar_to_incident
from learning.services import postmortem_transition, postmortem_update
from learning.tests.factories import FollowUpFactory, postmortem_editor, worked_incident
from runbooks.tests.factories import ready_runbook, sample_document
from testing.fakes.slack import slack_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client):
    user = UserFactory(username="reader")
    client.force_login(user)
    return user


def test_postmortem_page_renders_markdown_inert(client, settings):
    settings.ANTHROPIC_API_KEY = ""
    alice = postmortem_editor("pm-editor")
    client.force_login(alice)
    incident = worked_incident()
    postmortem_update(
        postmortem=incident.postmortem,
        actor=alice,
        summary="**Slow** <script>alert(1)</script> [x](javascript:alert(2))",
    )
    page = client.get(reverse("learning:postmortem", args=[incident.pk])).content.decode()
    assert "<strong>Slow</strong>" in page
    assert "<script>alert(1)" not in page and "javascript:alert" not in page
    assert 'data-testid="pm-timeline"' in page
    # The editor shows the Markdown source, escaped.
    editor = client.get(reverse("learning:postmortem", args=[incident.pk]) + "?edit=1")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in editor.content.decode()
    client.post(reverse("learning:postmortem", args=[incident.pk]), {"summary": "Edited."})
    incident.postmortem.refresh_from_db()
    assert incident.postmortem.summary == "Edited."
    client.post(reverse("learning:status", args=[incident.pk]), {"to": "in_review"})
    incident.postmortem.refresh_from_db()
    assert incident.postmortem.status == PostmortemStatus.IN_REVIEW


def test_draft_on_demand(client, settings):
    settings.ANTHROPIC_API_KEY = ""
    client.force_login(responder("on-call"))
    incident = IncidentFactory()
    client.post(reverse("learning:draft", args=[incident.pk]))
    assert incident.postmortem.author == "offline"


def test_timeline_exports(client, alice):
    incident = IncidentFactory(title="Pool | exhausted")
    incident_add_note(incident=incident, text="=cmd|' /C calc'!A0", actor=alice)
    incident_add_note(incident=incident, text="Restarted the pool", actor=alice)
    url = reverse("learning:timeline_export", args=[incident.pk, "json"])
    body = json.loads(client.get(url).content)
    assert [e["text"] for e in body["events"]] == ["=cmd|' /C calc'!A0", "Restarted the pool"]
    assert body["events"][0]["who"] == "reader"
    rows = list(
        csv.DictReader(io.StringIO(client.get(url.replace("json", "csv")).content.decode()))
    )
    assert rows[0]["text"].startswith("'=cmd") and rows[1]["text"] == "Restarted the pool"
    md = client.get(url.replace("json", "md")).content.decode()
    assert md.startswith(f"# Timeline of incident #{incident.pk}: Pool \\| exhausted")
    assert md.strip().endswith("| reader | Restarted the pool |")
    assert client.get(url.replace("json", "xml")).status_code == 404


def test_metrics_page_has_charts_in_bounded_queries(client, alice):
    now = timezone.now()
    for i in range(3):
        IncidentFactory(
            detected_at=now - timedelta(days=i * 8),
            acknowledged_at=now - timedelta(days=i * 8) + timedelta(minutes=5),
            severity=f"SEV{i + 1}",
        )
    url = reverse("learning:metrics")
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") == 2 and "<polyline" in page
    for i in range(30):
        IncidentFactory(detected_at=now - timedelta(days=i), service=f"svc{i % 7}")
    with CaptureQueriesContext(connection) as many:
        client.get(url + "?bucket=month&group=severity")
    assert len(many) == len(few)


def test_weekly_report(settings):
    now = timezone.now()
    start = (
        timezone.localtime(now) - timedelta(days=timezone.localtime(now).weekday() + 7)
    ).replace(hour=12, minute=0, second=0, microsecond=0)
    IncidentFactory(detected_at=start, severity="SEV1", service="checkout",
                    acknowledged_at=start + timedelta(minutes=6))  # fmt: skip
    IncidentFactory(detected_at=start + timedelta(days=1), severity="SEV2", service="checkout",
                    acknowledged_at=start + timedelta(days=1, minutes=2))  # fmt: skip
    IncidentFactory(detected_at=start - timedelta(days=7), service="search",
                    acknowledged_at=start - timedelta(days=7) + timedelta(minutes=8))  # fmt: skip
    FollowUpFactory(due_date=timezone.localdate() - timedelta(days=30), title="Old task")
    AlertFactory(source=AlertSourceFactory(), incident=None, title="DiskAlmostFull", count=9,
                 status="resolved", last_seen=start)  # fmt: skip
    report = weekly_report(now=now)
    assert report.total == 2 and report.previous_total == 1
    assert report.by_severity == {"SEV1": 1, "SEV2": 1, "SEV3": 0, "SEV4": 0}
    assert report.mtta == "4 min (-50% vs 8 min)"
    assert report.top_services == [("checkout", 2)]
    assert [f["title"] for f in report.overdue_follow_ups] == ["Old task"]
    assert report.noisy_alerts[0]["title"] == "DiskAlmostFull"
    text = report.as_text()
    assert "MTTA: 4 min" in text and "DiskAlmostFull x9" in text
    out = io.StringIO()
    call_command("weekly_report", stdout=out)
    assert "Weekly stability report" in out.getvalue()
    settings.SLACK_WEBHOOK_URL = ""
    settings.SLACK_BOT_TOKEN = ""
    assert post_weekly_report(now=now) is False  # not configured: nothing to post


def test_weekly_report_posts_to_slack(settings):
    with slack_server() as fake:
        settings.SLACK_WEBHOOK_URL = fake.webhook_url
        assert post_weekly_report() is True
    assert "Weekly stability report" in fake.texts()[0]


def test_handoff_page_and_command(client, alice):
    bob = UserFactory(username="bob")
    open_one = IncidentFactory(title="Still burning", severity="SEV1")
    ActionRequestFactory(
        runbook=ready_runbook(incident=open_one), status=ActionStatus.AWAITING_APPROVAL
    )
    report = handoff_report()
    assert [i["title"] for i in report.open_incidents] == ["Still burning"]
    assert len(report.pending_approvals) == 1
    assert report.overdue_updates == []  # detected just now
    page = client.get(reverse("learning:handoff")).content.decode()
    assert "Still burning" in page
    client.post(reverse("learning:handoff"), {"to_user": bob.pk, "known_risks": "DB failover"})
    handoff = Handoff.objects.get()
    assert (handoff.from_user, handoff.to_user) == (alice, bob)
    assert handoff.snapshot["open_incidents"][0]["title"] == "Still burning"
    out = io.StringIO()
    call_command("handoff", "--from", "bob", "--to", "reader", "--risks", "none", stdout=out)
    assert "Known risks (last handoff): DB failover" in out.getvalue()
    assert Handoff.objects.count() == 2


def test_published_postmortem_is_what_similar_incidents_show(settings):
    settings.ANTHROPIC_API_KEY = ""
    past = worked_incident()
    pm = past.postmortem
    assert similar_past_incidents(service="checkout") == []  # a draft teaches nothing yet
    postmortem_update(postmortem=pm, actor=None, root_cause="Connection leak in release 42.")
    postmortem_transition(postmortem=pm, to_status="in_review", actor=None)
    postmortem_transition(postmortem=pm, to_status="published", actor=None)
    new = IncidentFactory(service="payments")
    ready_runbook(sample_document(incident_type="resource_exhaustion"), incident=new)
    (lesson,) = similar_to_incident(new)
    assert lesson.incident_id == past.pk
    assert lesson.root_cause == "Connection leak in release 42."
    assert lesson.resolving_actions == ["restart_pool (alert.notify)"]
    assert similar_past_incidents(service="search", category="cache_issue") == []
