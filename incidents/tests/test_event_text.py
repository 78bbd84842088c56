"""Timeline text is rendered from an event's kind and payload; old rows show their message."""

import pytest
from django.urls import reverse

from incidents import events
from incidents.choices import TimelineKind
from incidents.event_text import RENDERERS, event_text, render_text
from incidents.models import TimelineEvent
from incidents.tests.factories import IncidentFactory, UserFactory

# One payload per kind (and per action status change), with the words it must render to.
CASES = [
    (TimelineKind.DECLARED, {"severity": "SEV2", "title": "DB down"}, "Declared SEV2: DB down"),
    (TimelineKind.ACKNOWLEDGED, {}, "Acknowledged"),
    (TimelineKind.STATUS_CHANGED, {"from": "a", "to": "b"}, "Status a → b"),
    (TimelineKind.SEVERITY_CHANGED, {"from": "SEV3", "to": "SEV1"}, "Severity SEV3 → SEV1"),
    (TimelineKind.NOTE, {"text": "rolled back"}, "rolled back"),
    (
        TimelineKind.ROLE_ASSIGNED,
        {"role_label": "scribe", "user_name": "bob"},
        "bob is now scribe",
    ),
    (TimelineKind.ROLE_ASSIGNED, {"role_label": "scribe", "user_name": None}, "No scribe any more"),
    (
        TimelineKind.STATUS_UPDATE,
        {"audience_label": "Internal", "body": "fixed"},
        "Internal: fixed",
    ),
    (TimelineKind.RUNBOOK_QUEUED, {"version": 2}, "Runbook v2 queued"),
    (
        TimelineKind.RUNBOOK_READY,
        {
            "version": 1,
            "author": "offline",
            "incident_type": "db",
            "affected_system": "pg",
            "confidence": 0.5,
            "checks": 3,
            "actions_count": 1,
        },
        "Runbook v1 ready (offline): db on pg, confidence 50%, 3 checks, 1 actions",
    ),
    (
        TimelineKind.RUNBOOK_INVALID,
        {"version": 1, "error_count": 4},
        "Runbook v1 is invalid (4 errors); nothing was run",
    ),
    (TimelineKind.RUNBOOK_FAILED, {"version": 3, "error": "boom"}, "Runbook v3 failed: boom"),
    (
        TimelineKind.GENERATION_FALLBACK,
        {"notes": ["x", "y"]},
        "Fell back to the offline planner: x; y",
    ),
    (
        TimelineKind.CHECKS_STARTED,
        {"checks": 2, "version": 1, "trigger": "pipeline"},
        "Running 2 checks of runbook v1 (pipeline)",
    ),
    (TimelineKind.CHECKS_DONE, {"counts": {"ok": 2, "error": 1}}, "Checks done: 1 error, 2 ok"),
    (TimelineKind.CHECKS_DONE, {"counts": {}}, "Checks done: none"),
    (
        TimelineKind.EXECUTION_REFUSED,
        {"version": 1, "error": "bad hash", "crashed": False},
        "Refused to run runbook v1: bad hash",
    ),
    (
        TimelineKind.EXECUTION_REFUSED,
        {"version": 1, "error": "Oops: x", "crashed": True},
        "Checks of runbook v1 failed: Oops: x",
    ),
    (
        TimelineKind.ACTION_PROPOSED,
        {"actions": [{"status": "proposed"}, {"status": "awaiting_approval"}]},
        "2 actions proposed: 1 awaiting approval, 1 proposed",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"step_id": "a1", "action": "noop", "change": "started"},
        "a1 (noop) started",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"step_id": "a1", "action": "noop", "change": "blocked", "reason": "target moved"},
        "a1 (noop) blocked: target moved",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"step_id": "a1", "action": "noop", "change": "target_changed", "reason": "url changed"},
        "Approval of a1 (noop) asked again with a fresh dry-run: url changed",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"step_id": "a1", "action": "noop", "change": "needs_approval", "reason": "destructive"},
        "a1 (noop) needs approval: destructive",
    ),
    (  # written before step ids were called so
        TimelineKind.ACTION_STATUS,
        {"action_id": "a1", "action": "noop", "change": "started"},
        "a1 (noop) started",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"action_id": "a1", "action": "noop", "change": "queued"},
        "a1 (noop) approved and queued",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"action_id": "a1", "action": "noop", "change": "expired"},
        "Approval request for a1 (noop) expired unanswered; ask again to run it",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {
            "action_id": "a1",
            "action": "noop",
            "change": "reasked",
            "actor_name": "al",
            "reason": "",
        },
        "al asked again for approval of a1 (noop); dry-run made afresh",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {"action_id": "a1", "action": "noop", "change": "lost"},
        "a1: worker lost: outcome unknown, verify before retrying",
    ),
    (
        TimelineKind.ACTION_STATUS,
        {
            "action_id": "a1",
            "action": "noop",
            "change": "finished",
            "succeeded": False,
            "late": True,
            "summary": "nope",
        },
        "a1 (noop) failed (after it had been marked lost; the request keeps that state): nope",
    ),
    (
        TimelineKind.APPROVAL,
        {
            "approver": "al",
            "action_id": "a1",
            "action": "noop",
            "decision": "approve",
            "reason": "ok",
            "approvals": 1,
            "required": 2,
        },
        "al approved a1 (noop) (1 of 2 approvals): ok",
    ),
    (
        TimelineKind.APPROVAL,
        {
            "approver": "al",
            "action_id": "a1",
            "action": "noop",
            "decision": "reject",
            "reason": "no",
        },
        "al rejected a1 (noop): no",
    ),
    (TimelineKind.NOTIFICATION, {"delivered": True, "text": "hi"}, "Slack told: hi"),
    (
        TimelineKind.NOTIFICATION,
        {"delivered": False, "action_id": "a1", "event": "approved", "error": "timeout"},
        "Slack was not told about a1 (approved): timeout",
    ),
    (
        TimelineKind.ALERT_RECEIVED,
        {"count": 3, "firing": 2, "resolved": 1, "refired": True},
        "3 alert update(s): 2 firing, 1 resolved (firing again after the alerts had cleared)",
    ),
    (
        TimelineKind.ALERTS_CLEARED,
        {"alerts": 4},
        "Alerts cleared: all 4 alert(s) have resolved. A person resolves the incident.",
    ),
    (
        TimelineKind.POSTMORTEM,
        {"change": "drafted", "author": "offline", "notes": ["Claude timed out"]},
        "Postmortem drafted (offline): Claude timed out",
    ),
    (
        TimelineKind.POSTMORTEM,
        {"change": "status", "from": "draft", "to": "in_review"},
        "Postmortem draft → in review",
    ),
    (
        TimelineKind.POSTMORTEM,
        {"change": "edited", "fields": ["Summary", "Root cause"]},
        "Postmortem edited: Summary, Root cause",
    ),
    (
        TimelineKind.POSTMORTEM,
        {"change": "reminder", "status": "draft", "hours": 48},
        "Postmortem still draft 48 h after resolution",
    ),
    (
        TimelineKind.FOLLOW_UP,
        {"change": "created", "title": "Add an alert", "owner": "bo", "due": "2026-12-08"},
        "Follow-up added for bo, due 2026-12-08: Add an alert",
    ),
    (
        TimelineKind.FOLLOW_UP,
        {"change": "status", "title": "Add an alert", "to": "in_progress"},
        "Follow-up in progress: Add an alert",
    ),
    (
        TimelineKind.FOLLOW_UP,
        {"change": "overdue", "title": "Add an alert", "due": "2026-12-08"},
        "Follow-up overdue since 2026-12-08: Add an alert",
    ),
    (
        TimelineKind.STATUS_UPDATE,
        {"audience_label": "Customer-facing notice", "body": "Looking", "draft": True},
        "Customer-facing notice (draft, not published): Looking",
    ),
    (TimelineKind.STATUS_EDITED, {"body": "Fixed"}, "Draft customer notice edited: Fixed"),
    (
        TimelineKind.STATUS_PUBLISHED,
        {"publisher": "pat", "body": "Fixed"},
        "pat published the customer notice: Fixed",
    ),
    (TimelineKind.WAR_ROOM, {"channel": "inc-1"}, "War room #inc-1 opened in Slack"),
    (
        TimelineKind.SLACK_UNDELIVERED,
        {"what": "a threaded update, retrying", "error": "fatal_error"},
        "Could not post to Slack (a threaded update, retrying): fatal_error",
    ),
    (
        TimelineKind.SLACK_USERS_UNKNOWN,
        {"emails": ["a@x.example", "b@x.example"]},
        "Not found in Slack, not invited: a@x.example, b@x.example",
    ),
    (
        TimelineKind.UPDATE_NUDGED,
        {"overdue_minutes": 12, "nudged": "pat"},
        "Status update overdue by 12 min; nudged pat",
    ),
    (
        TimelineKind.STAKEHOLDERS_EMAILED,
        {"recipients": 3},
        "Emailed the update to 3 stakeholder(s)",
    ),
]


@pytest.mark.parametrize(("kind", "payload", "text"), CASES)
def test_each_kind_renders_from_its_payload(kind, payload, text):
    assert render_text(kind, payload) == text


def test_every_kind_has_a_renderer_and_a_case():
    assert set(RENDERERS) == set(TimelineKind.values)
    assert {kind for kind, _, _ in CASES} == set(TimelineKind.values)


def test_unknown_kind_or_old_payload_falls_back_to_message():
    old = TimelineEvent(kind=TimelineKind.DECLARED, payload={"severity": "SEV1"}, message="old")
    gone = TimelineEvent(kind="retired_kind", payload={}, message="from before")
    assert event_text(old) == "old"
    assert event_text(gone) == "from before"


@pytest.mark.django_db
def test_event_functions_store_parameters_and_rendered_message():
    incident = IncidentFactory(title="Queue stuck")
    user = UserFactory(username="carol")
    declared = events.incident_declared_event(
        incident=incident, actor=user, severity="SEV2", service="queue"
    )
    declared.refresh_from_db()
    assert declared.payload == {"severity": "SEV2", "service": "queue", "title": "Queue stuck"}
    assert declared.message == "Declared SEV2: Queue stuck" == event_text(declared)
    status = events.action_status_event(
        incident=incident.pk, action_request_id=7, step_id="a1", action="noop", change="lost"
    )
    assert status.actor_label == "executor"
    assert status.message == "a1: worker lost: outcome unknown, verify before retrying"


@pytest.mark.django_db
def test_page_shows_text_rendered_from_payload_and_old_messages(client):
    user = UserFactory(username="dana")
    incident = IncidentFactory()
    # The stored message is stale on purpose: the page must render from kind + payload.
    TimelineEvent.objects.create(
        incident=incident,
        kind=TimelineKind.SEVERITY_CHANGED,
        payload={"from": "SEV4", "to": "SEV1"},
        message="stale words",
    )
    TimelineEvent.objects.create(incident=incident, kind=TimelineKind.NOTE, message="legacy note")
    client.force_login(user)
    body = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "Severity SEV4 → SEV1" in body
    assert "stale words" not in body
    assert "legacy note" in body
