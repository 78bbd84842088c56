"""Postmortems: drafted on resolution from the incident's real data, by Claude or offline."""

import json
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from incidents.choices import TimelineKind
from incidents.services import incident_declare, incident_transition
from learning.choices import PostmortemAuthor, PostmortemStatus
from learning.drafting import offline
from learning.drafting.document import document_errors
from learning.drafting.facts import gather
from learning.models import FollowUp, Postmortem
from learning.rendering import render_markdown
from learning.services import (
    LearningError,
    postmortem_draft,
    postmortem_reminders,
    postmortem_transition,
    postmortem_update,
)
from learning.tests.factories import postmortem_editor, worked_incident
from testing.fakes.anthropic import fake_claude, message

pytestmark = pytest.mark.django_db


def test_resolving_drafts_a_postmortem_from_the_incidents_data(settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = worked_incident()
    pm = Postmortem.objects.get(incident=incident)
    assert pm.status == PostmortemStatus.DRAFT and pm.author == PostmortemAuthor.OFFLINE

    # Impact times are the incident's own, as incidents.metrics measures them.
    times = pm.facts["times"]
    assert times["time_to_acknowledge_s"] == pytest.approx(
        (incident.acknowledged_at - incident.detected_at).total_seconds(), abs=0.1
    )
    assert times["time_to_resolve_s"] == pytest.approx(
        (incident.resolved_at - incident.detected_at).total_seconds(), abs=0.1
    )
    assert times["time_to_detect_s"] == pytest.approx(240, abs=0.1)
    assert times["mitigated_at"] is not None
    assert pm.facts["services"] == ["checkout", "checkout-db"]
    assert pm.facts["alerts"] == ["PgPoolExhausted"]
    assert pm.facts["customer_facing"] is True
    assert "Checkout is slow; we are on it." in pm.impact

    # The timeline is the incident's events in order, the key moments marked.
    events = list(incident.timeline.order_by("created_at", "id"))
    drafted = [e for e in events if e.kind == TimelineKind.POSTMORTEM]
    assert len(drafted) == 1
    # The draft was written after resolution: every event but its own note is in it.
    assert [row["kind"] for row in pm.timeline] == [e.kind for e in events if e not in drafted]
    keys = {row["kind"] for row in pm.timeline if row["key"]}
    assert {"declared", "acknowledged", "status_changed"} <= keys
    assert "role_assigned" not in keys

    # Root cause from the runbook's diagnosis; resolving action from what succeeded.
    assert pm.root_cause.startswith("A connection leak in the new checkout release")
    assert "Pool size too small" in pm.contributing_factors
    assert pm.root_cause_category == "resource_exhaustion"
    assert pm.resolving_actions == ["restart_pool (alert.notify)"]

    # Action items from the data: the failed step, the one that worked, the cause.
    titles = list(FollowUp.objects.filter(postmortem=pm).values_list("title", flat=True))
    assert any("kill_queries" in t and "failed" in t for t in titles)
    assert any("restart_pool" in t for t in titles)
    assert any(t.startswith("Prevent a recurrence: A connection leak") for t in titles)
    assert set(
        FollowUp.objects.filter(postmortem=pm).values_list("owner__username", flat=True)
    ) == {"alice"}
    assert "5 whys" not in pm.five_whys and pm.five_whys.startswith("1. **Why was checkout")


def test_offline_draft_is_valid_against_the_schema():
    incident = worked_incident(resolve=False)
    assert document_errors(offline.write(gather(incident))) == []


def _claude_document() -> dict:
    return {
        "summary": "Checkout was slow for 40 minutes.",
        "impact": "Customers saw timeouts at checkout.",
        "contributing_factors": "- The pool was small",
        "root_cause": "A connection leak shipped in a release.",
        "root_cause_category": "bad_deploy",
        "five_whys": [{"question": "Why slow?", "answer": "Pool exhausted."}],
        "went_well": "- Fast rollback",
        "to_improve": "- Earlier alert",
        "action_items": [{"title": "Add a pool usage alert", "priority": "P1"}],
        "lessons": "- Leaks show up under load",
    }


def test_claude_writes_the_draft_with_the_postmortem_schema(settings):
    settings.ANTHROPIC_API_KEY = "test-key"
    with fake_claude([message(_claude_document())]) as fake:
        incident = worked_incident()
    pm = Postmortem.objects.get(incident=incident)
    assert pm.author == PostmortemAuthor.CLAUDE and pm.model_id == "claude-sonnet-4-6"
    assert pm.root_cause_category == "bad_deploy"
    assert pm.summary == "Checkout was slow for 40 minutes."
    assert list(pm.follow_ups.values_list("title", "priority")) == [
        ("Add a pool usage alert", "P1")
    ]
    body = fake.bodies[0]
    schema = body["output_config"]["format"]["schema"]
    assert schema["title"] == "Postmortem draft"
    facts = json.loads(body["messages"][0]["content"].split("\n", 1)[1])
    assert facts["diagnosis"]["hypotheses"][0] == "A connection leak in the new checkout release"


def test_an_invalid_claude_answer_falls_back_to_the_offline_writer(settings):
    settings.ANTHROPIC_API_KEY = "test-key"
    broken = _claude_document() | {"root_cause_category": "Not Snake Case"}
    with fake_claude([message(broken)]) as fake:
        incident = worked_incident()
    assert len(fake.requests) == 1
    pm = Postmortem.objects.get(incident=incident)
    assert pm.author == PostmortemAuthor.OFFLINE
    assert "broke the schema" in pm.notes[0] and "offline writer" in pm.notes[0]
    drafted = incident.timeline.get(kind=TimelineKind.POSTMORTEM)
    assert "fell back to the offline writer" in drafted.message


def test_drafting_twice_keeps_the_first(settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = worked_incident()
    first = Postmortem.objects.get(incident=incident)
    assert postmortem_draft(incident_id=incident.pk).pk == first.pk
    # Reopening and resolving again drafts nothing new.
    incident_transition(incident=incident, to_status="investigating")
    with TestCase.captureOnCommitCallbacks(execute=True):
        incident_transition(incident=incident, to_status="resolved")
    assert Postmortem.objects.filter(incident=incident).count() == 1


def test_script_and_javascript_links_render_inert():
    html = render_markdown(
        "Hello <script>alert(1)</script> [click](javascript:alert(2)) "
        '<img src=x onerror="alert(3)"> [ok](https://example.com) **bold**'
    )
    assert "<script" not in html and "javascript:" not in html
    assert "onerror" not in html and "<img" not in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in html
    assert "<strong>bold</strong>" in html


def test_states_move_draft_review_published_on_the_timeline(settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = worked_incident()
    pm = incident.postmortem
    bob = postmortem_editor("bob")
    postmortem_transition(postmortem=pm, to_status="in_review", actor=bob)
    postmortem_transition(postmortem=pm, to_status="published", actor=bob)
    assert pm.status == PostmortemStatus.PUBLISHED and pm.published_at is not None
    moves = [
        e.message
        for e in incident.timeline.filter(kind=TimelineKind.POSTMORTEM, actor=bob).order_by("id")
    ]
    assert moves == ["Postmortem draft → in review", "Postmortem in review → published"]
    with pytest.raises(LearningError, match="cannot move"):
        postmortem_transition(postmortem=pm, to_status="draft", actor=bob)
    with pytest.raises(LearningError, match="final"):
        postmortem_update(postmortem=pm, actor=bob, summary="changed")


def test_blameless_check_refuses_a_person_named_as_cause(settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = worked_incident()
    pm = incident.postmortem
    postmortem_update(
        postmortem=pm, actor=None, root_cause="Alice caused the outage by deploying on Friday."
    )
    with pytest.raises(LearningError, match="Blameless") as exc:
        postmortem_transition(postmortem=pm, to_status="in_review", actor=None)
    assert "names Alice" in str(exc.value)
    postmortem_update(
        postmortem=pm, actor=None, root_cause="A Friday deploy shipped a connection leak."
    )
    postmortem_transition(postmortem=pm, to_status="in_review", actor=None)
    assert (
        incident.timeline.filter(message__startswith="Postmortem edited: Root cause").count() == 2
    )


def test_sev1_and_sev2_drafts_are_reminded_48h_after_resolution(settings):
    settings.ANTHROPIC_API_KEY = ""
    sev2 = worked_incident()
    sev4 = incident_declare(title="Minor", description="x", severity="SEV4", generate_runbook=False)
    with TestCase.captureOnCommitCallbacks(execute=True):
        incident_transition(incident=sev4, to_status="resolved")
    now = timezone.now()
    assert postmortem_reminders(now=now + timedelta(hours=47)) == []
    assert postmortem_reminders(now=now + timedelta(hours=49)) == [sev2.postmortem.pk]
    assert postmortem_reminders(now=now + timedelta(hours=50)) == []  # once
    reminder = sev2.timeline.get(kind=TimelineKind.POSTMORTEM, payload__change="reminder")
    assert reminder.message == "Postmortem still draft 48 h after resolution"
