"""The war room against a local Slack: channel, card, thread, summary, outages."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from coordination.models import SlackPost, WarRoom
from coordination.outbox import sweep
from incidents.choices import TimelineKind
from incidents.events import checks_done_event
from incidents.services import (
    incident_assign_role,
    incident_declare,
    incident_set_severity,
    incident_transition,
    status_update_post,
)
from incidents.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def declare(capture, severity="SEV1", actor=None, title="Checkout down"):
    with capture(execute=True):
        return incident_declare(
            title=title, description="", severity=severity, actor=actor, generate_runbook=False
        )


def kinds(incident):
    return list(incident.timeline.order_by("id").values_list("kind", flat=True))


def test_a_paging_incident_opens_its_war_room(slack, django_capture_on_commit_callbacks):
    alice = UserFactory(username="alice")
    alice_id = slack.add_user(alice.email)
    incident = declare(django_capture_on_commit_callbacks, actor=alice)

    room = WarRoom.objects.get(incident=incident)
    assert slack.methods()[:6] == [
        "conversations.create",
        "conversations.setTopic",
        "users.lookupByEmail",
        "conversations.invite",
        "chat.postMessage",
        "pins.add",
    ]
    channel = slack.channels[room.channel_id]
    assert room.channel_name == channel["name"]
    assert re.fullmatch(rf"inc-\d{{8}}-{incident.pk}-checkout-down", channel["name"])
    assert channel["topic"].startswith("SEV1 · Investigating · Checkout down")
    assert alice_id in channel["members"]
    assert channel["pins"] == [room.card_ts]
    card = slack.messages[0]
    assert card["ts"] == room.card_ts and card["thread_ts"] is None
    attachment = card["attachments"][0]
    assert attachment["color"] == "#b42318"
    fields = [f["text"] for f in attachment["blocks"][1]["fields"]]
    assert "*Status*\nInvestigating" in fields and "*Severity*\nSEV1" in fields
    buttons = attachment["blocks"][3]["elements"]
    assert [b["text"]["text"] for b in buttons] == [
        "Acknowledge",
        "Open incident",
        "Approval queue",
    ]
    assert buttons[1]["url"] == f"https://ops.example.com/incidents/{incident.pk}/"
    assert TimelineKind.WAR_ROOM in kinds(incident)


def test_the_card_and_thread_follow_the_incident(slack, django_capture_on_commit_callbacks):
    alice = UserFactory(username="alice")
    slack.add_user(alice.email)
    ghost = UserFactory(username="ghost", email="ghost@elsewhere.example")
    incident = declare(django_capture_on_commit_callbacks, actor=alice)
    room = WarRoom.objects.get(incident=incident)
    with django_capture_on_commit_callbacks(execute=True):
        incident_assign_role(incident=incident, role="commander", user=ghost, actor=alice)
        checks_done_event(
            incident=incident,
            runbook_id=1,
            execution_id=1,
            version=1,
            counts={"passed": 2, "failed": 1},
            actor=None,
        )
        incident_transition(incident=incident, to_status="identified", actor=alice)
        status_update_post(incident=incident, audience="internal", body="Rolling back", actor=alice)
        status_update_post(incident=incident, audience="customer", body="Draft", actor=alice)
        incident_transition(incident=incident, to_status="resolved", actor=alice)

    thread = [m["text"] for m in slack.thread(room.channel_id, room.card_ts)]
    assert [t.split(" <")[0] for t in thread] == [
        "ghost is now incident commander",
        "Checks done: 1 failed, 2 passed",
        "Status investigating → identified",
        "Acknowledged",
        "Internal update: Rolling back",
        "Status identified → resolved",
    ]
    assert all("|view>" in t for t in thread)
    # The unknown email is on the timeline, not fatal.
    unknown = incident.timeline.get(kind=TimelineKind.SLACK_USERS_UNKNOWN)
    assert unknown.payload["emails"] == ["ghost@elsewhere.example"]
    # The pinned card was updated to the last state.
    card = next(m for m in slack.messages if m["ts"] == room.card_ts)
    fields = [f["text"] for f in card["attachments"][0]["blocks"][1]["fields"]]
    assert "*Status*\nResolved" in fields and "*Commander*\nghost" in fields
    assert len(slack.updates) >= 4
    # The last word in the channel is the final summary.
    summary = slack.messages[-1]
    assert summary["thread_ts"] is None
    assert summary["text"].startswith(f"*Resolved: #{incident.pk} Checkout down*")
    assert (
        "time to acknowledge" in summary["text"]
        and "Open follow-ups: 1 unpublished" in summary["text"]
    )
    assert not SlackPost.objects.filter(sent_at__isnull=True).exists()


def test_a_taken_name_gets_a_suffix(slack, django_capture_on_commit_callbacks):
    from coordination.cards import channel_name

    incident = declare(django_capture_on_commit_callbacks, severity="SEV3")
    slack.take_channel_name(channel_name(incident))
    with django_capture_on_commit_callbacks(execute=True):
        incident_set_severity(incident=incident, severity="SEV1")
    room = WarRoom.objects.get(incident=incident)
    assert room.channel_name == channel_name(incident) + "-2"
    assert slack.methods().count("conversations.create") == 2


def test_minor_incidents_get_no_room_until_raised(slack, django_capture_on_commit_callbacks):
    incident = declare(django_capture_on_commit_callbacks, severity="SEV3")
    assert slack.calls == [] and not WarRoom.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        incident_set_severity(incident=incident, severity="SEV2")
    assert WarRoom.objects.get(incident=incident).card_ts


def test_without_a_token_only_the_timeline(settings, django_capture_on_commit_callbacks):
    settings.SLACK_BOT_TOKEN = ""
    incident = declare(django_capture_on_commit_callbacks)
    assert not WarRoom.objects.exists()
    assert kinds(incident) == [TimelineKind.DECLARED]


def test_an_outage_delays_posts_and_says_so(slack, django_capture_on_commit_callbacks):
    slack.down = True
    incident = declare(django_capture_on_commit_callbacks)
    assert incident.pk  # the incident's own work went through
    post = SlackPost.objects.get()
    assert (post.sent_at, post.attempts) == (None, 1) and "fatal_error" in post.last_error
    said = incident.timeline.get(kind=TimelineKind.SLACK_UNDELIVERED)
    assert "opening the war room, retrying" in said.message
    # The sweep retries once the backoff has passed, and the room opens.
    slack.down = False
    assert sweep(now=timezone.now()) == 0  # not due yet
    assert sweep(now=timezone.now() + timedelta(minutes=5)) == 1
    assert WarRoom.objects.get().card_ts


def test_refused_connections_do_not_block(slack, settings, django_capture_on_commit_callbacks):
    settings.SLACK_API_URL = "http://127.0.0.1:9/api/"
    incident = declare(django_capture_on_commit_callbacks)
    post = SlackPost.objects.get()
    assert post.sent_at is None and post.attempts == 1
    assert incident.timeline.filter(kind=TimelineKind.SLACK_UNDELIVERED).exists()


def test_a_refusal_gives_the_post_up(slack, settings, django_capture_on_commit_callbacks):
    settings.SLACK_BOT_TOKEN = "xoxb-revoked"
    incident = declare(django_capture_on_commit_callbacks)
    post = SlackPost.objects.get()
    assert post.failed_at is not None and post.last_error == "invalid_auth"
    said = incident.timeline.get(kind=TimelineKind.SLACK_UNDELIVERED)
    assert said.message == "Could not post to Slack (opening the war room, given up): invalid_auth"


def test_rate_limits_wait_for_retry_after(slack, django_capture_on_commit_callbacks):
    slack.script["chat.postMessage"] = [("rate", 1)]
    declare(django_capture_on_commit_callbacks)
    assert slack.methods().count("chat.postMessage") == 2
    assert WarRoom.objects.get().card_ts


def test_the_button_opens_a_room_for_a_minor_incident(
    slack, client, django_capture_on_commit_callbacks
):
    incident = declare(django_capture_on_commit_callbacks, severity="SEV4")
    client.force_login(UserFactory(username="lee"))
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Open a war room" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/slack/incidents/{incident.pk}/war-room/")
    room = WarRoom.objects.get(incident=incident)
    assert room.card_ts
    assert (
        f"Slack #{room.channel_name}" in client.get(f"/incidents/{incident.pk}/").content.decode()
    )


def test_a_batch_of_timeline_rows_reads_the_rooms_once(slack, django_capture_on_commit_callbacks):
    """An alert storm's rows arrive as one batch: one room lookup, not one per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents.events import timeline_event, timeline_record_many

    incidents = [declare(django_capture_on_commit_callbacks, title=f"Down {i}") for i in range(3)]
    rows = [
        timeline_event(incident=incident, kind=TimelineKind.NOTE, payload={"text": f"n{n}"})
        for incident in incidents
        for n in range(4)
    ]
    with CaptureQueriesContext(connection) as ctx:
        timeline_record_many(rows)
    room_reads = [q for q in ctx.captured_queries if 'FROM "coordination_warroom"' in q["sql"]]
    assert len(room_reads) == 1
    # ...and every row still reached its room's thread.
    for incident in incidents:
        room = WarRoom.objects.get(incident=incident)
        assert room.posts.filter(kind=SlackPost.Kind.THREAD).count() == 4


def test_the_services_owners_are_invited(slack, django_capture_on_commit_callbacks):
    """The catalog's owners join the room; one Slack lacks is named on the timeline."""
    from coordination.models import SlackUser
    from executor.models import Service

    alice = UserFactory(username="alice")
    alice_id = slack.add_user(alice.email)
    owner_id = slack.add_user("owner@example.com")
    Service.objects.create(
        name="checkout", owners=["owner@example.com", "left@example.com", alice.email.lower()]
    )
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_declare(
            title="Checkout down",
            description="",
            severity="SEV1",
            service="checkout",
            actor=alice,
            generate_runbook=False,
        )

    room = WarRoom.objects.get(incident=incident)
    invites = [args for method, args in slack.calls if method == "conversations.invite"]
    assert len(invites) == 1  # one call for everyone, each once (alice is declarer and owner)
    assert invites[0]["users"].split(",") == [alice_id, owner_id]
    assert {alice_id, owner_id} <= slack.channels[room.channel_id]["members"]
    unknown = incident.timeline.get(kind=TimelineKind.SLACK_USERS_UNKNOWN)
    assert unknown.payload["emails"] == ["left@example.com"]
    # Looked up once each, and remembered (the unknown one too) for the next room.
    lookups = [a["email"] for m, a in slack.calls if m == "users.lookupByEmail"]
    assert sorted(lookups) == sorted([alice.email.lower(), "owner@example.com", "left@example.com"])
    assert SlackUser.objects.get(email="left@example.com").slack_id == ""
    with django_capture_on_commit_callbacks(execute=True):
        incident_declare(
            title="Checkout down again",
            description="",
            severity="SEV2",
            service="checkout",
            actor=alice,
            generate_runbook=False,
        )
    assert [m for m, _ in slack.calls].count("users.lookupByEmail") == 3


def test_an_incident_outside_the_catalog_invites_only_its_people(
    slack, django_capture_on_commit_callbacks
):
    from executor.models import Service

    Service.objects.create(name="search", owners=["owner@example.com"])
    slack.add_user("owner@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        incident_declare(
            title="Unknown thing",
            description="",
            severity="SEV1",
            service="billing",
            generate_runbook=False,
        )
    assert "users.lookupByEmail" not in slack.methods()
    assert WarRoom.objects.get().card_ts


def test_text_from_outside_cannot_ping_the_channel(slack, django_capture_on_commit_callbacks):
    """An alert title or a log line with Slack markup reaches the thread as plain text."""
    from incidents.services import incident_add_note

    incident = declare(django_capture_on_commit_callbacks, title="<!channel> disk full & <x|y>")
    with django_capture_on_commit_callbacks(execute=True):
        incident_add_note(incident=incident, text="see <!here> <https://evil.example|docs>")
    room = WarRoom.objects.get(incident=incident)
    note = slack.thread(room.channel_id, room.card_ts)[-1]["text"]
    assert note.startswith("see &lt;!here&gt; &lt;https://evil.example|docs&gt; <https://")
    assert "<!" not in "".join(m["text"] for m in slack.messages)
