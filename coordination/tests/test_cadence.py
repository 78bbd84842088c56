"""The update cadence: late incidents are nudged in their war room and flagged on the pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from coordination.cadence import nudge_overdue_updates
from coordination.models import WarRoom
from incidents.choices import TimelineKind
from incidents.services import status_update_post
from incidents.tests.factories import IncidentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def late(slack, django_capture_on_commit_callbacks):
    """A SEV1 (15 min cadence) detected 40 minutes ago, never updated, with its war room."""
    comms = UserFactory(username="casey")
    comms_id = slack.add_user(comms.email)
    incident = IncidentFactory(
        severity="SEV1", detected_at=timezone.now() - timedelta(minutes=40), comms_lead=comms
    )
    with django_capture_on_commit_callbacks(execute=True):
        from coordination.outbox import war_room_request

        war_room_request(incident=incident)
    return incident, comms_id


def test_the_comms_lead_is_nudged_once_per_cadence(late, slack, django_capture_on_commit_callbacks):
    incident, comms_id = late
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert nudge_overdue_updates(now=now) == 1
        assert nudge_overdue_updates(now=now + timedelta(minutes=5)) == 0
    nudge = slack.messages[-1]
    assert nudge["thread_ts"] is None
    assert nudge["text"].startswith(f"<@{comms_id}>: the last status update is 25 min overdue")
    event = incident.timeline.get(kind=TimelineKind.UPDATE_NUDGED)
    assert event.message == "Status update overdue by 25 min; nudged casey"
    # A fresh update puts it back on time: nothing more to nudge.
    status_update_post(incident=incident, audience="internal", body="Still on it")
    WarRoom.objects.update(last_nudged_at=None)
    assert nudge_overdue_updates(now=now + timedelta(minutes=10)) == 0
    assert nudge_overdue_updates(now=now + timedelta(minutes=17)) == 1


def test_drafts_do_not_count_as_updates(late):
    incident, _ = late
    status_update_post(incident=incident, audience="customer", body="Draft only")
    assert nudge_overdue_updates() == 1


def test_pages_show_how_late_the_update_is(client, late):
    incident, _ = late
    client.force_login(UserFactory(username="viewer"))
    listing = client.get("/").content.decode()
    assert "update overdue by 25 min" in listing
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "update overdue by 25 min" in page
    status_update_post(incident=incident, audience="internal", body="Mitigated")
    assert "update overdue" not in client.get(f"/incidents/{incident.pk}/").content.decode()


def test_no_room_no_nudge(slack):
    IncidentFactory(severity="SEV1", detected_at=timezone.now() - timedelta(hours=2))
    assert nudge_overdue_updates() == 0
    assert not WarRoom.objects.exists()
