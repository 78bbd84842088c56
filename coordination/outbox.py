"""The war room's outbox: what the incident asked to post, sent in order, retried.

Rows are written in the transaction that changed the incident and sent after it
commits, one room at a time (a lease on the room keeps its thread in order). A Slack
outage only delays the posts: a transient failure waits and is retried with backoff,
a refusal or the last attempt gives the post up; both are said on the timeline.
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from executor.decision_notices import war_room_message
from executor.models import Service
from incidents.events import (
    slack_undelivered_event,
    slack_users_unknown_event,
    war_room_opened_event,
)
from incidents.models import Incident

from . import cards
from .client import slack_client
from .models import SlackPost, SlackUser, WarRoom

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
NEGATIVE_LOOKUP_TTL = timedelta(hours=1)
# Slack answers these when it is struggling, not when it refuses: try again later.
TRANSIENT_ERRORS = {"ratelimited", "fatal_error", "internal_error", "service_unavailable"}
ROLE_FIELDS = ("commander", "comms_lead", "tech_lead", "scribe")


class Retry(Exception):
    """A post that may succeed later."""


def war_room_request(*, incident: Incident | int) -> tuple[WarRoom, bool]:
    """The incident's war room, queued to open if it is new: (room, created)."""
    incident_id = incident if isinstance(incident, int) else incident.pk
    room, created = WarRoom.objects.get_or_create(incident_id=incident_id)
    if created:
        post_queue(room=room, kind=SlackPost.Kind.OPEN)
    return room, created


def post_queue(*, room: WarRoom, kind: str, payload: dict | None = None) -> SlackPost:
    """Add a post to the room's outbox; it leaves once the transaction commits."""
    post = SlackPost.objects.create(room=room, kind=kind, payload=payload or {})
    transaction.on_commit(lambda: schedule_drain(room.pk))
    return post


DRAIN_ROOM_TASK = "coordination.drain_room"


def schedule_drain(room_id: int) -> None:
    # By name: the tasks module imports this one (eager mode still runs it inline).
    try:
        current_app.tasks[DRAIN_ROOM_TASK].delay(room_id)
    except Exception as exc:  # a down broker: the sweeper sends it
        logger.warning("war room %s drain not queued: %s", room_id, exc)


# --- people ---------------------------------------------------------------------------


def slack_id_for(client: WebClient, email: str, now: datetime | None = None) -> str | None:
    """Slack's user id for an email, cached; None when Slack has no such user."""
    now = now or timezone.now()
    email = email.strip().lower()
    cached = SlackUser.objects.filter(email=email).first()
    if cached and (cached.slack_id or cached.checked_at > now - NEGATIVE_LOOKUP_TTL):
        return cached.slack_id or None
    try:
        found = client.users_lookupByEmail(email=email)["user"]["id"]
    except SlackApiError as exc:
        if exc.response.get("error") != "users_not_found":
            raise
        found = ""
    SlackUser.objects.update_or_create(email=email, defaults={"slack_id": found, "checked_at": now})
    return found or None


def email_for_slack_user(client: WebClient, slack_id: str) -> str | None:
    """The email of a Slack user (cached beside the reverse lookup)."""
    cached = SlackUser.objects.filter(slack_id=slack_id).first()
    if cached:
        return cached.email
    try:
        email = client.users_info(user=slack_id)["user"]["profile"].get("email")
    except SlackApiError:
        return None
    if email:
        SlackUser.objects.update_or_create(
            email=email.lower(), defaults={"slack_id": slack_id, "checked_at": timezone.now()}
        )
    return email


def responders(incident: Incident) -> list[Any]:
    """The people the war room invites: the declarer and whoever holds a role."""
    people = [incident.created_by, *(getattr(incident, f) for f in ROLE_FIELDS)]
    seen: dict[int, Any] = {}
    for person in people:
        if person is not None and person.pk not in seen:
            seen[person.pk] = person
    return list(seen.values())


def service_owners(incident: Incident) -> list[str]:
    """The catalog's owners (emails) of the incident's service; none when it has no entry."""
    if not incident.service:
        return []
    owners = Service.objects.filter(name=incident.service).values_list("owners", flat=True)
    found = owners.first() or []
    return [email for email in found if isinstance(email, str)]


def _invite(client: WebClient, room: WarRoom, users: list[Any], emails: Sequence[str] = ()) -> None:
    """Invite users (by their email) and bare emails; whoever Slack lacks goes on the timeline."""
    unknown: list[str] = []
    wanted: list[str] = []
    for user in users:
        if user.email:
            wanted.append(user.email)
        else:
            unknown.append(user.get_username())
    ids: list[str] = []
    for email in dict.fromkeys(e.strip().lower() for e in [*wanted, *emails] if e.strip()):
        slack_id = slack_id_for(client, email)
        if slack_id is None:
            unknown.append(email)
        elif slack_id not in ids:
            ids.append(slack_id)
    if unknown:
        slack_users_unknown_event(incident=room.incident_id, emails=unknown)
    if not ids:
        return
    try:
        client.conversations_invite(channel=room.channel_id, users=",".join(ids))
    except SlackApiError as exc:
        if exc.response.get("error") != "already_in_channel":
            raise


# --- the operations ---------------------------------------------------------------------


def _open(client: WebClient, room: WarRoom, incident: Incident, payload: dict) -> None:
    if not room.channel_id:
        for attempt in range(10):
            name = cards.channel_name(incident, attempt)
            try:
                channel = client.conversations_create(name=name)["channel"]
            except SlackApiError as exc:
                if exc.response.get("error") == "name_taken":
                    continue
                raise
            room.channel_id, room.channel_name = channel["id"], channel["name"]
            room.save(update_fields=["channel_id", "channel_name"])
            war_room_opened_event(incident=incident, channel=room.channel_name)
            break
        else:
            raise SlackApiError("no free channel name", {"ok": False, "error": "name_taken"})
    client.conversations_setTopic(channel=room.channel_id, topic=cards.channel_topic(incident))
    _invite(client, room, responders(incident), service_owners(incident))
    if not room.card_ts:
        sent = client.chat_postMessage(channel=room.channel_id, **cards.card(incident))
        room.card_ts = sent["ts"]
        room.save(update_fields=["card_ts"])
    try:
        client.pins_add(channel=room.channel_id, timestamp=room.card_ts)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_pinned":
            raise


def _card(client: WebClient, room: WarRoom, incident: Incident, payload: dict) -> None:
    client.chat_update(channel=room.channel_id, ts=room.card_ts, **cards.card(incident))
    client.conversations_setTopic(channel=room.channel_id, topic=cards.channel_topic(incident))


def _thread(client: WebClient, room: WarRoom, incident: Incident, payload: dict) -> None:
    said = payload["text"]
    if payload.get("notice"):  # approval news, in the executor's words
        said = war_room_message(payload["notice"]) or said
    text = cards.thread_text(incident, said, payload.get("event_id"))
    client.chat_postMessage(channel=room.channel_id, thread_ts=room.card_ts, text=text)


def _channel(client: WebClient, room: WarRoom, incident: Incident, payload: dict) -> None:
    if payload.get("summary"):
        text = cards.final_summary(incident)
    elif payload.get("nudge"):
        who = incident.comms_lead or incident.commander
        slack_id = slack_id_for(client, who.email) if who is not None and who.email else None
        mention = f"<@{slack_id}>" if slack_id else "Incident commander"
        text = (
            f"{mention}: the last status update is {payload['overdue']} min overdue "
            f"(cadence {payload['cadence']}). `/inc update <text>` posts one."
        )
    elif payload.get("status"):
        text = cards.status_line(incident)
    else:
        text = payload["text"]
    # A reply to someone (a mention) goes under their message.
    client.chat_postMessage(channel=room.channel_id, text=text, thread_ts=payload.get("reply_to"))


def _invite_op(client: WebClient, room: WarRoom, incident: Incident, payload: dict) -> None:
    users = list(get_user_model().objects.filter(pk__in=payload.get("user_ids", [])))
    _invite(client, room, users)


OPERATIONS = {
    SlackPost.Kind.OPEN: _open,
    SlackPost.Kind.CARD: _card,
    SlackPost.Kind.THREAD: _thread,
    SlackPost.Kind.CHANNEL: _channel,
    SlackPost.Kind.INVITE: _invite_op,
}
DESCRIBED = {
    SlackPost.Kind.OPEN: "opening the war room",
    SlackPost.Kind.CARD: "updating the incident card",
    SlackPost.Kind.THREAD: "a threaded update",
    SlackPost.Kind.CHANNEL: "a message in the war room",
    SlackPost.Kind.INVITE: "inviting responders",
}


def _send(client: WebClient, post: SlackPost, room: WarRoom) -> None:
    """Run one post; Retry for what may pass, SlackApiError for what Slack refused."""
    if post.kind != SlackPost.Kind.OPEN and not (room.channel_id and room.card_ts):
        raise SlackApiError("the war room did not open", {"ok": False, "error": "no_war_room"})
    incident = Incident.objects.select_related(*ROLE_FIELDS, "created_by").get(pk=room.incident_id)
    try:
        OPERATIONS[post.kind](client, room, incident, post.payload)
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in TRANSIENT_ERRORS or getattr(exc.response, "status_code", 200) >= 429:
            raise Retry(error or f"HTTP {exc.response.status_code}") from exc
        raise
    except (OSError, ValueError) as exc:  # refused, timed out, a garbled answer
        raise Retry(f"{type(exc).__name__}: {exc}") from exc


def _give_up(post: SlackPost, now: datetime, error: str) -> None:
    SlackPost.objects.filter(pk=post.pk).update(failed_at=now, last_error=error[:1000])
    slack_undelivered_event(
        incident=post.room.incident_id, what=DESCRIBED[post.kind] + ", given up", error=error
    )


def drain(*, room_id: int, now: datetime | None = None) -> int:
    """Send the room's pending posts in order; returns how many were sent."""
    if not settings.SLACK_BOT_TOKEN:
        return 0
    now = now or timezone.now()
    won = WarRoom.objects.filter(
        Q(draining_until__isnull=True) | Q(draining_until__lt=now), pk=room_id
    ).update(draining_until=now + LEASE)
    if not won:
        return 0  # someone else is sending this room's posts, in order
    sent = 0
    client = slack_client()
    try:
        room = WarRoom.objects.get(pk=room_id)
        done: set[int] = set()
        while True:
            # Read afresh each time: posts queued while this drain runs go out too.
            post = (
                room.posts.filter(sent_at__isnull=True, failed_at__isnull=True)
                .exclude(pk__in=done)
                .order_by("id")
                .first()
            )
            if post is None or (post.next_attempt_at and post.next_attempt_at > now):
                break  # wait for it: later posts must not overtake
            done.add(post.pk)
            try:
                _send(client, post, room)
            except Retry as exc:
                attempts = post.attempts + 1
                if attempts >= settings.SLACK_POST_MAX_ATTEMPTS:
                    _give_up(post, now, str(exc))
                    continue
                if attempts == 1:
                    slack_undelivered_event(
                        incident=room.incident_id,
                        what=DESCRIBED[post.kind] + ", retrying",
                        error=str(exc),
                    )
                SlackPost.objects.filter(pk=post.pk).update(
                    attempts=attempts,
                    last_error=str(exc)[:1000],
                    next_attempt_at=now + timedelta(seconds=min(15 * 2**attempts, 900)),
                )
                break
            except SlackApiError as exc:
                _give_up(post, now, str(exc.response.get("error") or exc))
            else:
                SlackPost.objects.filter(pk=post.pk).update(
                    sent_at=timezone.now(), attempts=post.attempts + 1
                )
                sent += 1
    finally:
        WarRoom.objects.filter(pk=room_id).update(draining_until=None)
    return sent


def sweep(*, now: datetime | None = None) -> int:
    """Drain every room with a post that is due (lost messages, retries after backoff)."""
    now = now or timezone.now()
    rooms = (
        SlackPost.objects.filter(sent_at__isnull=True, failed_at__isnull=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("room_id", flat=True)
        .distinct()
    )
    return sum(drain(room_id=room_id, now=now) for room_id in list(rooms))
