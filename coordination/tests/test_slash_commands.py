"""/inc and the card's buttons: signed requests only, the web UI's services behind them."""

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from coordination.models import WarRoom
from incidents.choices import TimelineKind
from incidents.models import Incident
from incidents.tests.factories import IncidentFactory, UserFactory

pytestmark = pytest.mark.django_db
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed(body: str, ts: int | None = None, secret: str = SECRET) -> dict:
    ts = int(time.time()) if ts is None else ts
    base = f"v0:{ts}:{body}".encode()
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(ts), "HTTP_X_SLACK_SIGNATURE": sig}


def post(client, path, fields, **headers):
    body = urlencode(fields)
    return client.post(
        path,
        body,
        content_type="application/x-www-form-urlencoded",
        **(headers or signed(body)),
    )


@pytest.fixture
def pat(slack):
    user = UserFactory(username="pat")
    return user, slack.add_user(user.email)


@pytest.fixture
def room(slack):
    incident = IncidentFactory(severity="SEV2", title="Payments failing")
    return WarRoom.objects.create(incident=incident, channel_id="C-ROOM", card_ts="1.1")


def inc(client, pat, text, channel="C-ROOM"):
    response = post(
        client,
        "/slack/commands/",
        {"command": "/inc", "text": text, "user_id": pat[1], "channel_id": channel},
    )
    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    return response.json()["text"]


def test_declare_from_anywhere(client, pat):
    reply = inc(client, pat, "declare Checkout is down sev2", channel="C-GENERAL")
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.created_by) == (
        "Checkout is down",
        "SEV2",
        pat[0],
    )
    assert reply.startswith(f"Declared #{incident.pk} Checkout is down (SEV2)")


def test_commands_in_the_war_room(client, pat, room, slack):
    other = UserFactory(username="kim")
    kim_id = slack.add_user(other.email)
    assert inc(client, pat, "ack") == f"Acknowledged #{room.incident_id}."
    assert inc(client, pat, "sev SEV1") == f"#{room.incident_id} is SEV1."
    assert "kim is now communications lead" in inc(client, pat, f"role comms <@{kim_id}|kim>")
    assert inc(client, pat, "update Rolled back the deploy") == "Internal update posted."
    assert inc(client, pat, "note Looks better") == "Noted on the timeline."
    assert "SEV1, Investigating" in inc(client, pat, "status")
    assert inc(client, pat, "resolve") == f"Resolved #{room.incident_id}."
    incident = Incident.objects.get(pk=room.incident_id)
    assert (incident.severity, incident.status, incident.comms_lead) == ("SEV1", "resolved", other)
    assert incident.status_updates.get().body == "Rolled back the deploy"
    actors = set(incident.timeline.values_list("actor__username", flat=True))
    assert actors == {"pat"}


def test_a_nul_in_what_was_typed_is_left_out_not_a_server_error(client, pat, room):
    assert inc(client, pat, "note Looks\x00 better") == "Noted on the timeline."
    note = Incident.objects.get(pk=room.incident_id).timeline.get(kind=TimelineKind.NOTE)
    assert "Looks better" in note.message and "\x00" not in note.message
    reply = inc(client, pat, "declare Disk\x00 full on db1 sev2", channel="C\x00GENERAL")
    assert reply.startswith("Declared #") and "Disk full on db1 (SEV2)" in reply


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sev SEV9", "Usage: `/inc sev"),
        ("role pilot <@U1>", "Usage: `/inc role"),
        ("role commander <@UNOBODY>", "has no account here"),
        ("update", "Usage: `/inc update"),
        ("frobnicate", "Unknown subcommand `frobnicate`"),
        ("declare", "Usage: `/inc declare"),
    ],
)
def test_bad_arguments_say_what_is_wrong(client, pat, room, text, says):
    assert says in inc(client, pat, text)


def test_outside_a_war_room(client, pat):
    assert (
        inc(client, pat, "ack", channel="C-GENERAL")
        == "Run this in an incident's war room channel."
    )


def test_unknown_slack_user(client, slack, room):
    reply = inc(client, (None, "UNOBODY"), "ack")
    assert "matches no account here" in reply
    assert Incident.objects.get().acknowledged_at is None


def test_wrong_signature_stale_or_replayed_is_refused(client, pat, room):
    fields = {"command": "/inc", "text": "resolve", "user_id": pat[1], "channel_id": "C-ROOM"}
    body = urlencode(fields)
    wrong = signed(body, secret="not-the-secret")
    stale = signed(body, ts=int(time.time()) - 301)
    for headers in (wrong, stale, {"HTTP_X_SLACK_REQUEST_TIMESTAMP": "x"}):
        assert post(client, "/slack/commands/", fields, **headers).status_code == 401
    assert Incident.objects.get().status == "investigating"
    good = signed(body)
    assert post(client, "/slack/commands/", fields, **good).status_code == 200
    Incident.objects.update(status="investigating", resolved_at=None)
    assert post(client, "/slack/commands/", fields, **good).status_code == 401
    assert Incident.objects.get().status == "investigating"


def test_acknowledge_button(client, pat, room):
    payload = {
        "type": "block_actions",
        "user": {"id": pat[1]},
        "actions": [{"action_id": "incident_acknowledge", "value": str(room.incident_id)}],
    }
    response = post(client, "/slack/interactivity/", {"payload": json.dumps(payload)})
    assert response.status_code == 200
    incident = Incident.objects.get()
    assert incident.acknowledged_at is not None
    assert incident.timeline.get(kind=TimelineKind.ACKNOWLEDGED).actor == pat[0]


def test_unconfigured_slack_refuses(client, settings, pat):
    settings.SLACK_SIGNING_SECRET = ""
    assert post(client, "/slack/commands/", {"text": "help"}).status_code == 401


form_text = st.text(max_size=40)
form = st.dictionaries(
    st.sampled_from(["command", "text", "user_id", "channel_id", "payload", "x"]) | form_text,
    form_text
    | st.sampled_from(["declare x sev1", "role commander <@U1>", "ack", "{}", '{"user": 1}'])
    | st.builds(
        lambda v: json.dumps(
            {
                "user": {"id": "U00000001"},
                "actions": [{"action_id": "incident_acknowledge", "value": v}],
            }
        ),
        form_text,
    ),
    max_size=6,
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    fields=form,
    path=st.sampled_from(["/slack/commands/", "/slack/interactivity/", "/slack/events/"]),
    sign=st.booleans(),
)
def test_random_bodies_never_5xx(pat, room, fields, path, sign):
    body = urlencode(fields)
    headers = signed(body) if sign else {}
    response = Client().post(
        path, body, content_type="application/x-www-form-urlencoded", **headers
    )
    assert response.status_code < 500
    if not sign:
        assert response.status_code == 401
