"""The Events API URL: signed and fresh only, the URL check answered, events handled once."""

import json
import time

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from coordination.models import SlackPost, WarRoom
from coordination.tests.test_slash_commands import signed
from incidents.tests.factories import IncidentFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/slack/events/"


def send(client, envelope, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(envelope)
    return client.post(URL, body, content_type="application/json", **(headers or signed(body)))


def mention(channel, event_id="Ev0001", ts="1700000100.000200", **extra):
    return {
        "type": "event_callback",
        "event_id": event_id,
        "event": {
            "type": "app_mention",
            "user": "U00000077",
            "channel": channel,
            "ts": ts,
            "text": "<@UBOT00001> what is going on?",
            **extra,
        },
    }


@pytest.fixture
def opened(slack, django_capture_on_commit_callbacks):
    """A SEV1 with its war room open in the fake Slack."""
    from incidents.services import incident_declare

    commander = UserFactory(username="quinn")
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_declare(
            title="Search is slow",
            description="",
            severity="SEV1",
            actor=commander,
            generate_runbook=False,
        )
    return WarRoom.objects.get(incident=incident)


def test_the_url_check_is_answered(client, slack):
    response = send(client, {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV"})
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV"}


def test_unsigned_stale_wrong_or_replayed_is_refused(client, slack):
    envelope = {"type": "url_verification", "challenge": "abc"}
    body = json.dumps(envelope)
    stale = signed(body, ts=int(time.time()) - 301)
    wrong = signed(body, secret="another-secret")
    for headers in (stale, wrong, {"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(int(time.time()))}):
        assert send(client, envelope, headers).status_code == 401
    good = signed(body)
    assert send(client, envelope, good).status_code == 200
    assert send(client, envelope, good).status_code == 401  # the same signed request again


def test_without_the_signing_secret_nothing_is_accepted(client, slack, settings):
    settings.SLACK_SIGNING_SECRET = ""
    assert send(client, {"type": "url_verification", "challenge": "abc"}).status_code == 401


def test_a_mention_in_the_war_room_is_answered_in_its_thread(
    client, slack, opened, django_capture_on_commit_callbacks
):
    before = len(slack.messages)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, mention(opened.channel_id))
    assert response.status_code == 200 and response.content == b""
    replies = slack.messages[before:]
    assert len(replies) == 1
    assert replies[0]["channel"] == opened.channel_id
    assert replies[0]["thread_ts"] == "1700000100.000200"
    incident = opened.incident
    assert replies[0]["text"].startswith(
        f"#{incident.pk} Search is slow: SEV1, Investigating, commander nobody."
    )
    assert "what is going on" not in replies[0]["text"]


def test_a_retried_event_is_handled_once(client, slack, opened, django_capture_on_commit_callbacks):
    """Slack retries a slow answer newly signed, with the same event_id: one reply."""
    body = json.dumps(mention(opened.channel_id))
    retry = body + "\n"  # other bytes, so another signature
    with django_capture_on_commit_callbacks(execute=True):
        assert send(client, None, raw=body).status_code == 200
        assert send(client, None, raw=retry).status_code == 200
    assert SlackPost.objects.filter(room=opened, kind=SlackPost.Kind.CHANNEL).count() == 1
    assert [m["thread_ts"] for m in slack.messages].count("1700000100.000200") == 1


def test_other_events_and_other_channels_change_nothing(client, slack, opened):
    joined = {
        "type": "event_callback",
        "event_id": "Ev0009",
        "event": {
            "type": "member_joined_channel",
            "user": "U00000077",
            "channel": opened.channel_id,
        },
    }
    posts = SlackPost.objects.count()
    assert send(client, joined).status_code == 200
    assert send(client, mention("C-ELSEWHERE", event_id="Ev0010")).status_code == 200
    assert (
        send(client, mention(opened.channel_id, event_id="Ev0011", bot_id="B1")).status_code == 200
    )
    assert send(client, {"type": "app_rate_limited"}).status_code == 200
    assert SlackPost.objects.count() == posts


def test_garbage_is_a_400_not_an_error(client, slack):
    for raw in ("not json", "[1, 2]", "[" * 50_000, '{"type": "url_verification"}'):
        assert send(client, None, raw=raw).status_code == 400


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
envelope = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["event_callback", "url_verification", "x"]) | st.text(max_size=10),
        "challenge": json_value,
        "event_id": st.sampled_from(["Ev1", "Ev2"]) | json_value,
        "event": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["app_mention", "member_joined_channel"]) | json_value,
                "user": st.sampled_from(["U00000077"]) | json_value,
                "channel": st.sampled_from(["C-ROOM", "C00000001"]) | json_value,
                "ts": st.sampled_from(["1.1", "1700000000.000001"]) | json_value,
                "thread_ts": json_value,
                "bot_id": json_value,
            },
        )
        | json_value,
    },
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=envelope.map(json.dumps) | st.text(max_size=60), sign=st.booleans())
def test_random_bodies_never_5xx(slack, body, sign):
    if not WarRoom.objects.filter(channel_id="C-ROOM").exists():
        WarRoom.objects.create(incident=IncidentFactory(), channel_id="C-ROOM", card_ts="1.1")
    headers = signed(body) if sign else {}
    response = Client().post(URL, body, content_type="application/json", **headers)
    assert response.status_code < 500
    if not sign:
        assert response.status_code == 401
