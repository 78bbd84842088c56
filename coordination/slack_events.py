"""What the Events API tells us, and the little we do about it.

Slack expects an answer within three seconds and retries otherwise, so a handler only
queues work in the war room's outbox; the post leaves after the request commits. Text
typed in Slack is never used: a mention gets the incident's status, nothing more.
"""

import re
from collections.abc import Callable

from django.db import IntegrityError, transaction

from .models import SlackPost, SlackRequest, WarRoom
from .outbox import post_queue

EVENT_ID = re.compile(r"^Ev[A-Za-z0-9]{1,40}$")
SLACK_ID = re.compile(r"^[A-Z0-9]{1,32}$")
MESSAGE_TS = re.compile(r"^\d{1,12}\.\d{1,8}$")


def first_delivery(event_id: object) -> bool:
    """False when this event was handled already (Slack retries a slow answer, newly
    signed, with the same event_id). The key shares the replay table and its sweep,
    which keeps rows longer than Slack keeps retrying."""
    if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
        return False
    try:
        with transaction.atomic():
            SlackRequest.objects.create(signature=f"event:{event_id}")
    except IntegrityError:
        return False
    return True


def _app_mention(event: dict) -> None:
    """Mentioned in a war room: reply in the mention's thread with where the incident stands."""
    channel, user = event.get("channel"), event.get("user")
    if event.get("bot_id") or not isinstance(user, str) or not SLACK_ID.match(user):
        return  # bots (ourselves included) get no answer: no loops
    if not isinstance(channel, str) or not SLACK_ID.match(channel):
        return
    reply_to = event.get("thread_ts") or event.get("ts")
    if not isinstance(reply_to, str) or not MESSAGE_TS.match(reply_to):
        return
    room = WarRoom.objects.filter(channel_id=channel).exclude(card_ts="").first()
    if room is None:
        return  # not a war room: nothing of ours to tell
    with transaction.atomic():
        post_queue(
            room=room,
            kind=SlackPost.Kind.CHANNEL,
            payload={"status": True, "reply_to": reply_to},
        )


# Event types we act on; any other (member_joined_channel, ...) is acknowledged and dropped.
HANDLERS: dict[str, Callable[[dict], None]] = {"app_mention": _app_mention}


def event_handle(envelope: dict) -> None:
    """One `event_callback` envelope, already verified: run its handler once."""
    event = envelope.get("event")
    if not isinstance(event, dict):
        return
    handler = HANDLERS.get(str(event.get("type", "")))
    if handler is None or not first_delivery(envelope.get("event_id")):
        return
    handler(event)
