"""Follow-ups: by hand and from the postmortem, "my follow-ups", overdue flagged and reminded."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.choices import TimelineKind
from incidents.tests.factories import IncidentFactory, UserFactory
from learning.choices import FollowUpStatus
from learning.models import FollowUp
from learning.services import (
    LearningError,
    follow_up_create,
    follow_up_reminders,
    follow_up_set_status,
)
from learning.tests.factories import FollowUpFactory

pytestmark = pytest.mark.django_db


def test_created_by_hand_on_the_timeline():
    alice = UserFactory(username="alice")
    incident = IncidentFactory()
    due = timezone.localdate() + timedelta(days=3)
    item = follow_up_create(
        incident=incident,
        title="Add a pool alert",
        owner=alice,
        due_date=due,
        priority="P1",
        external_url="https://tickets.example.com/OPS-1",
        actor=alice,
    )
    assert item.status == FollowUpStatus.OPEN
    event = incident.timeline.get(kind=TimelineKind.FOLLOW_UP)
    assert event.message == f"Follow-up added for alice, due {due.isoformat()}: Add a pool alert"
    with pytest.raises(LearningError, match="http"):
        follow_up_create(incident=incident, title="x", external_url="javascript:alert(1)")


def test_status_moves_along_its_table():
    item = FollowUpFactory()
    follow_up_set_status(follow_up=item, to_status="done", actor=None)
    assert item.status == FollowUpStatus.DONE
    with pytest.raises(LearningError, match="cannot move"):
        follow_up_set_status(follow_up=item, to_status="in_progress", actor=None)


def test_overdue_ones_are_reminded_once():
    today = timezone.localdate()
    late = FollowUpFactory(due_date=today - timedelta(days=1))
    FollowUpFactory(due_date=today + timedelta(days=1))
    FollowUpFactory(due_date=today - timedelta(days=5), status=FollowUpStatus.DONE)
    assert follow_up_reminders(today=today) == [late.pk]
    assert follow_up_reminders(today=today) == []
    event = late.incident.timeline.get(kind=TimelineKind.FOLLOW_UP)
    assert event.message.startswith("Follow-up overdue since")


def test_my_follow_ups_page_flags_overdue(client):
    alice = UserFactory(username="alice")
    today = timezone.localdate()
    late = FollowUpFactory(owner=alice, due_date=today - timedelta(days=2), title="Late one")
    FollowUpFactory(owner=alice, due_date=today + timedelta(days=2), title="On time")
    FollowUpFactory(title="Somebody else's")
    client.force_login(alice)
    page = client.get(reverse("learning:my_follow_ups")).content.decode()
    assert "Late one" in page and "On time" in page and "Somebody else" not in page
    assert page.count('data-overdue="1"') == 1
    response = client.post(
        reverse("learning:follow_up_status", args=[late.pk]), {"to": "done", "back": "mine"}
    )
    assert response.status_code == 302
    assert FollowUp.objects.get(pk=late.pk).status == FollowUpStatus.DONE


def test_added_on_the_postmortem_page(client):
    alice = UserFactory(username="alice")
    incident = IncidentFactory()
    client.force_login(alice)
    client.post(
        reverse("learning:follow_up_add", args=[incident.pk]),
        {"title": "Runbook for pool leaks", "owner": alice.pk, "priority": "P2"},
    )
    assert FollowUp.objects.get(incident=incident).title == "Runbook for pool leaks"


def test_reminders_are_posted_to_slack_when_configured(settings):
    from learning.tasks import remind_task
    from testing.fakes.slack import slack_server

    alice = UserFactory(username="alice")
    FollowUpFactory(owner=alice, title="Rotate keys", due_date=timezone.localdate() - timedelta(1))
    with slack_server() as fake:
        settings.SLACK_WEBHOOK_URL = fake.webhook_url
        assert remind_task() == {"postmortems": 0, "follow_ups": 1}
        assert remind_task() == {"postmortems": 0, "follow_ups": 0}
    assert len(fake.texts()) == 1
    assert "Follow-up overdue since" in fake.texts()[0] and "Rotate keys (alice)" in fake.texts()[0]
