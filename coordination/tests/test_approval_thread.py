"""Approval news under the incident card: proposed, approved, run, rejected, expired.

The words are executor.decision_notices'; they reach the war room through its outbox,
in order with the rest of the thread, and never as a separate channel message.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from coordination.models import SlackPost, WarRoom
from executor import services
from executor.choices import ActionStatus
from executor.tests.approval_helpers import make_approver, step
from incidents.choices import TimelineKind
from incidents.services import incident_declare
from incidents.tests.factories import UserFactory
from runbooks.tests.factories import ready_runbook, sample_document
from testing.fakes.slack_web import TOKEN as slack_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_channel(slack, settings, monkeypatch):
    """The bot's notification channel, where decisions go for incidents without a room."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_token)  # the bot target reads its variable
    channel = slack.take_channel_name("ops-notifications")
    settings.SLACK_CHANNEL = channel
    settings.SLACK_WEBHOOK_URL = ""
    return channel


def _incident_with_actions(capture, severity: str, *steps: dict):
    declarer = UserFactory(username="alice")
    with capture(execute=True):
        incident = incident_declare(
            title="Checkout down",
            description="",
            severity=severity,
            actor=declarer,
            generate_runbook=False,
        )
        runbook = ready_runbook(
            sample_document(checks=[], recommended_actions=list(steps)), incident=incident
        )
    with capture(execute=True):
        services.execution_run(runbook_id=runbook.pk)
    return incident, {r.step_id: r for r in runbook.action_requests.all()}


def _notices(slack, room):
    """The thread's replies that are approval news, without the link back."""
    return [
        m["text"].rsplit(" <", 1)[0]
        for m in slack.thread(room.channel_id, room.card_ts)
        if "(alert.notify)" in m["text"]
    ]


def test_approval_news_is_threaded_in_order(slack, ops_channel, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    incident, requests = _incident_with_actions(
        capture,
        "SEV1",
        step("tell", "alert.notify", message="restarting"),
        step("page", "alert.notify", message="paging"),
        step("later", "alert.notify", message="later"),
        step("fyi", "alert.notify", safe=True, message="fyi"),
    )
    room = WarRoom.objects.get(incident=incident)
    assert room.card_ts
    assert requests["tell"].status == ActionStatus.AWAITING_APPROVAL
    with capture(execute=True):
        services.action_request_approve(
            action_request=requests["tell"], approver=make_approver("carol")
        )
    with capture(execute=True):
        services.action_request_reject(
            action_request=requests["page"], approver=make_approver("dave"), reason="not now"
        )
    with capture(execute=True):
        services.action_requests_expire(now=timezone.now() + timedelta(days=1))

    where = f"incident #{incident.pk} [SEV1] Checkout down"
    notices = _notices(slack, room)
    assert notices[0].splitlines()[0] == f"4 actions proposed for {where}:"
    assert (
        notices[0].splitlines()[1].startswith("• tell (alert.notify) on timeline awaits approval: ")
    )
    assert notices[0].splitlines()[4] == (
        "• fyi (alert.notify) on timeline may be run by a responder from the incident page"
    )
    assert notices[1:] == [
        f"carol approved tell (alert.notify) on timeline for {where}; it runs now. (asked by runbook v1)",
        notices[2],
        f"dave rejected page (alert.notify) on timeline for {where}: not now (asked by runbook v1)",
        f"The approval request for later (alert.notify) on timeline for {where} expired unanswered; "
        "ask again to run it. (asked by runbook v1)",
    ]
    assert notices[2].startswith(f"tell (alert.notify) on timeline for {where} ran and succeeded: ")
    # Each reply links back to its row of the timeline.
    replies = slack.thread(room.channel_id, room.card_ts)
    approved = incident.timeline.get(kind=TimelineKind.APPROVAL, payload__decision="approve")
    assert any(f"#event-{approved.pk}|view>" in m["text"] for m in replies)
    # Not a separate message: the notification channel heard nothing of this incident.
    assert not [m for m in slack.messages if m["channel"] == ops_channel]
    assert not incident.timeline.filter(kind=TimelineKind.NOTIFICATION).exists()
    assert not SlackPost.objects.filter(sent_at__isnull=True).exists()


def test_without_a_war_room_decisions_go_to_the_channel(
    slack, ops_channel, django_capture_on_commit_callbacks
):
    incident, requests = _incident_with_actions(
        django_capture_on_commit_callbacks, "SEV3", step("tell", "alert.notify", message="x")
    )
    assert not WarRoom.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.action_request_reject(
            action_request=requests["tell"], approver=make_approver("dave"), reason="no"
        )
    posted = [m["text"] for m in slack.messages if m["channel"] == ops_channel]
    assert posted == [
        f"dave rejected tell (alert.notify) on timeline for incident #{incident.pk} [SEV3] Checkout down: "
        "no (asked by runbook v1)"
    ]


def test_a_slack_outage_never_blocks_the_approval(
    slack, ops_channel, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    incident, requests = _incident_with_actions(
        capture, "SEV2", step("tell", "alert.notify", message="x")
    )
    room = WarRoom.objects.get(incident=incident)
    slack.down = True
    with capture(execute=True):
        request = services.action_request_approve(
            action_request=requests["tell"], approver=make_approver("carol")
        )
    request.refresh_from_db()
    assert request.status == ActionStatus.SUCCEEDED  # approved and run, Slack or not
    waiting = SlackPost.objects.filter(room=room, sent_at__isnull=True).order_by("id")
    assert [p.payload["notice"]["event"] for p in waiting] == ["approved", "finished"]
    said = incident.timeline.filter(kind=TimelineKind.SLACK_UNDELIVERED).last()
    assert "a threaded update, retrying" in said.message
    # Slack is back: the sweep sends them, in order, under the card.
    slack.down = False
    from coordination.outbox import sweep

    assert sweep(now=timezone.now() + timedelta(minutes=5)) == 2
    notices = _notices(slack, room)
    assert notices[-2].startswith("carol approved tell") and "ran and succeeded" in notices[-1]
