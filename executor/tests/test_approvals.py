"""Approval rules in the services: four eyes, two approvers, expiry and asking again, notify."""

import importlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from executor import services, tasks
from executor.choices import ActionStatus, Decision
from executor.models import ActionRequest, Approval
from incidents.choices import TimelineKind
from incidents.tests.factories import UserFactory

from .approval_helpers import fly_target, make_approver, notify_request, pending_requests, step

# Real commits, so work queued with on_commit runs (inline: eager).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]

MACHINES = ["148e21ea", "3d8d9ee1"]


@pytest.fixture
def fly(settings, monkeypatch):
    with fly_target(settings, monkeypatch, MACHINES) as fake:
        yield fake


def _restart_request(severity: str) -> ActionRequest:
    reqs = pending_requests(step("restart", "service.restart", safe=True), severity=severity)
    return reqs["restart"]


def test_self_approval_is_refused_with_a_clear_message():
    request = notify_request()
    requester = make_approver("asker")
    ActionRequest.objects.filter(pk=request.pk).update(requested_by=requester)
    with pytest.raises(
        services.ExecutorError, match="You asked for this action; someone else must approve it"
    ):
        services.action_request_approve(action_request=request, approver=requester)
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert not request.approvals.exists()


def test_a_user_without_the_permission_cannot_decide():
    request = notify_request()
    nobody = UserFactory(username="nobody", is_staff=True)
    with pytest.raises(services.ExecutorError, match="permission to approve"):
        services.action_request_approve(action_request=request, approver=nobody)
    with pytest.raises(services.ExecutorError, match="permission to reject"):
        services.action_request_reject(action_request=request, approver=nobody, reason="no")
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL


def test_destructive_action_on_sev1_needs_two_distinct_approvers(settings, fly):
    settings.APPROVALS_REQUIRED_DESTRUCTIVE = 2
    request = _restart_request("SEV1")
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert "148e21ea" in request.plan and "3d8d9ee1" in request.plan  # the dry-run listed them
    assert services.approvals_required(request) == 2

    first = make_approver("first")
    request = services.action_request_approve(action_request=request, approver=first)
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert fly.restarts == []  # one approval is not enough: nothing ran
    with pytest.raises(services.ExecutorError, match="already approved"):
        services.action_request_approve(action_request=request, approver=first)

    request = services.action_request_approve(
        action_request=request, approver=make_approver("second")
    )
    assert request.status == ActionStatus.SUCCEEDED, request.error
    assert fly.restarts == MACHINES  # each machine restarted exactly once
    assert set(request.approvals.values_list("approver__username", flat=True)) == {
        "first",
        "second",
    }
    messages = list(
        request.incident.timeline.filter(kind=TimelineKind.APPROVAL).values_list(
            "message", flat=True
        )
    )
    assert any("(1 of 2 approvals)" in m for m in messages)
    assert any("(2 of 2 approvals)" in m for m in messages)


@pytest.mark.parametrize(
    ("severity", "setting", "needed"),
    [("SEV2", 2, 2), ("SEV3", 2, 1), ("SEV1", 1, 1)],
)
def test_two_approvers_only_where_configured(settings, fly, severity, setting, needed):
    settings.APPROVALS_REQUIRED_DESTRUCTIVE = setting
    request = _restart_request(severity)
    request = services.action_request_approve(action_request=request, approver=make_approver("one"))
    expected = ActionStatus.SUCCEEDED if needed == 1 else ActionStatus.AWAITING_APPROVAL
    assert request.status == expected
    assert len(fly.restarts) == (2 if needed == 1 else 0)


def test_reversible_action_needs_one_approver_even_on_sev1(settings):
    settings.APPROVALS_REQUIRED_DESTRUCTIVE = 2
    request = notify_request(severity="SEV1")
    assert services.approvals_required(request) == 1
    request = services.action_request_approve(action_request=request, approver=make_approver("a"))
    assert request.status == ActionStatus.SUCCEEDED


def test_expiry_depends_on_severity(settings):
    settings.APPROVAL_TTL_MINUTES = {"SEV1": 5, "SEV4": 600}
    before = timezone.now()
    sev1 = notify_request("a", severity="SEV1")
    sev4 = notify_request("b", severity="SEV4")
    sev3 = notify_request("c", severity="SEV3")  # not configured: the default, 4 h
    assert timedelta(minutes=5) <= sev1.expires_at - before < timedelta(minutes=6)
    assert timedelta(minutes=600) <= sev4.expires_at - before < timedelta(minutes=601)
    assert timedelta(hours=4) <= sev3.expires_at - before < timedelta(hours=4, minutes=1)


def test_expired_request_cannot_be_approved_and_asking_again_remakes_the_plan(fly):
    request = _restart_request("SEV2")
    assert "3d8d9ee1" in request.plan
    ActionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    approver = make_approver("approver")
    # Past its time, even before the sweeper ran: refused.
    with pytest.raises(services.ExecutorError, match="expired; ask for approval again"):
        services.action_request_approve(action_request=request, approver=approver)

    counts = tasks.sweep_stale_task()  # the beat task that runs every minute
    assert counts["expired"] == 1
    request.refresh_from_db()
    assert request.status == ActionStatus.EXPIRED
    with pytest.raises(services.ExecutorError, match="expired"):
        services.action_request_approve(action_request=request, approver=approver)
    assert fly.restarts == []
    assert request.incident.timeline.filter(message__contains="expired unanswered").exists()

    # The fleet changed meanwhile: asking again shows today's machines, not yesterday's.
    fly.machines = [{"id": "77aa00bb", "name": "web-new", "state": "started", "region": "ams"}]
    responder = make_approver("responder")
    request = services.action_request_reask(action_request=request, actor=responder)
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert "77aa00bb" in request.plan and "3d8d9ee1" not in request.plan
    assert request.requested_by == responder
    assert request.expires_at - timezone.now() > timedelta(minutes=55)  # SEV2: 60 min again
    with pytest.raises(services.ExecutorError, match="only an expired request"):
        services.action_request_reask(action_request=request, actor=responder)
    # Who asked cannot approve it; someone else can, and it runs against today's fleet.
    with pytest.raises(services.ExecutorError, match="someone else must approve"):
        services.action_request_approve(action_request=request, approver=responder)
    request = services.action_request_approve(action_request=request, approver=approver)
    assert request.status == ActionStatus.SUCCEEDED, request.error
    assert fly.restarts == ["77aa00bb"]


def test_an_approval_from_an_expired_round_does_not_count(settings, fly):
    settings.APPROVALS_REQUIRED_DESTRUCTIVE = 2
    request = _restart_request("SEV1")
    early = make_approver("early")
    services.action_request_approve(action_request=request, approver=early)
    services.action_requests_expire(now=timezone.now() + timedelta(hours=1))
    request = services.action_request_reask(action_request=request, actor=make_approver("asker"))
    request = services.action_request_approve(action_request=request, approver=make_approver("b"))
    # One fresh approval of two: the early one was for the stale plan.
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert request.approval_round == 2
    # The early approver sees the fresh plan and may approve this round.
    request = services.action_request_approve(action_request=request, approver=early)
    assert request.status == ActionStatus.SUCCEEDED
    assert fly.restarts == MACHINES
    assert sorted(request.approvals.values_list("approver__username", "round")) == [
        ("b", 2),
        ("early", 1),
        ("early", 2),
    ]


def test_rejection_needs_a_reason_and_is_final():
    request = notify_request()
    approver = make_approver("approver")
    with pytest.raises(services.ExecutorError, match="reason is required"):
        services.action_request_reject(action_request=request, approver=approver, reason="  ")
    request = services.action_request_reject(
        action_request=request, approver=approver, reason="wrong service"
    )
    assert request.status == ActionStatus.REJECTED
    approval = Approval.objects.get(action_request=request)
    assert (approval.decision, approval.reason) == (Decision.REJECT, "wrong service")
    with pytest.raises(services.ExecutorError, match="rejected; it cannot be approved"):
        services.action_request_approve(action_request=request, approver=make_approver("other"))
    with pytest.raises(services.ExecutorError, match="only an expired request"):
        services.action_request_reask(action_request=request, actor=approver)
    assert request.incident.timeline.filter(
        kind=TimelineKind.APPROVAL, message__contains="rejected tell (alert.notify): wrong service"
    ).exists()


def test_decisions_reach_slack_and_the_timeline(settings, fake_slack):
    slack = fake_slack
    settings.SLACK_WEBHOOK_URL = slack.webhook_url
    asker = make_approver("asker")
    approved = notify_request("a", message="hello")
    rejected = notify_request("b")
    ActionRequest.objects.filter(pk__in=[approved.pk, rejected.pk]).update(requested_by=asker)

    services.action_request_approve(action_request=approved, approver=make_approver("carol"))
    services.action_request_reject(
        action_request=rejected, approver=make_approver("dave"), reason="not now"
    )

    # The action itself posts to the timeline target (no Slack target); the decisions to Slack.
    texts = slack.texts()
    assert len(texts) == 2, texts
    assert "carol approved a (alert.notify)" in texts[0] and "(asked by asker)" in texts[0]
    assert "dave rejected b (alert.notify)" in texts[1] and "not now" in texts[1]
    for request in (approved, rejected):
        notes = request.incident.timeline.filter(kind=TimelineKind.NOTIFICATION)
        assert notes.filter(payload__delivered=True).count() == 1


def test_without_slack_the_timeline_alone_records_the_decision():
    request = notify_request()
    services.action_request_approve(action_request=request, approver=make_approver("carol"))
    timeline = request.incident.timeline
    assert timeline.filter(
        kind=TimelineKind.APPROVAL, message__startswith="carol approved"
    ).exists()
    assert not timeline.filter(kind=TimelineKind.NOTIFICATION).exists()


def test_a_failing_slack_does_not_undo_the_decision(settings, fake_slack):
    fake_slack.script.append(("no_service",))  # Slack's 404 for a revoked webhook
    settings.SLACK_WEBHOOK_URL = fake_slack.webhook_url
    request = notify_request()
    request = services.action_request_reject(
        action_request=request, approver=make_approver("carol"), reason="no"
    )
    assert request.status == ActionStatus.REJECTED
    note = request.incident.timeline.get(kind=TimelineKind.NOTIFICATION)
    assert note.payload["delivered"] is False and "404" in note.message


def test_the_approvers_group_grants_the_decision():
    migration = importlib.import_module("executor.migrations.0003_approvers_group")
    from django.apps import apps

    migration.create_group(apps, None)  # idempotent: also what `migrate` ran
    group = Group.objects.get(name="approvers")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"approve_actionrequest", "view_actionrequest", "view_approval"} <= codenames

    member = UserFactory(username="member", is_staff=True)
    member.groups.add(group)
    member = type(member).objects.get(pk=member.pk)
    request = services.action_request_approve(action_request=notify_request(), approver=member)
    assert request.status == ActionStatus.SUCCEEDED


def test_a_recorded_approval_is_announced_with_its_count_at_the_time(settings, fly, monkeypatch):
    """The Slack post leaves after commit, maybe after a second approval: it must still say
    1 of 2 (waiting), not count again and tell approvers the action waits while it runs."""
    from executor import decision_notices

    settings.APPROVALS_REQUIRED_DESTRUCTIVE = 2
    queued: list[dict] = []
    monkeypatch.setattr(decision_notices, "decision_notify_queue", lambda **p: queued.append(p))
    request = _restart_request("SEV1")
    services.action_request_approve(action_request=request, approver=make_approver("first"))
    request = services.action_request_approve(
        action_request=request, approver=make_approver("second")
    )
    assert request.status == ActionStatus.SUCCEEDED, request.error
    first, second = queued
    assert first["event"] == "approval_recorded" and second["event"] == "approved"
    first.pop("action_request_id")
    text = decision_notices.decision_message(request=request, **first)
    assert "first approved" in text and "(1 of 2)" in text and "waits for another" in text
