"""Slack's requests: the `/inc` slash command, the card's buttons and the Events API.

Every request must carry Slack's signature over its exact body, made within five
minutes; a signature already served is a replay. Anything else is 401 and changes
nothing.
"""

import json
import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.models import Incident
from incidents.services import IncidentError, incident_acknowledge
from incidents.storable import clean_payload, clean_text

from .cards import ACK_ACTION
from .client import signature_verifier, slack_client, slack_enabled
from .commands import run_command, user_for_email
from .models import SlackRequest, WarRoom
from .outbox import email_for_slack_user, war_room_request
from .slack_events import event_handle

logger = logging.getLogger(__name__)


def _verified(request: HttpRequest) -> bool:
    verifier = signature_verifier()
    if verifier is None:
        return False
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp.isdigit() or not signature or len(signature) > 100:
        return False
    if not verifier.is_valid(body=request.body, timestamp=timestamp, signature=signature):
        return False
    try:
        with transaction.atomic():
            SlackRequest.objects.create(signature=signature)
    except IntegrityError:
        return False  # the same signed request again: a replay
    return True


def _ephemeral(text: str) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "text": text})


def _user_for(slack_id: str) -> Any:
    client = slack_client()
    if client is None or not slack_id:
        return None
    return user_for_email(email_for_slack_user(client, slack_id))


def _refused() -> HttpResponse:
    return HttpResponse("invalid request signature", status=401, content_type="text/plain")


@csrf_exempt
@require_POST
def slash_command(request: HttpRequest) -> HttpResponse:
    if not _verified(request):
        return _refused()
    # Typed text, signed by Slack but written by a person: nothing PostgreSQL refuses.
    form = {k: clean_text(request.POST.get(k, "")) for k in ("user_id", "channel_id", "text")}
    user = _user_for(form["user_id"])
    if user is None:
        return _ephemeral(
            "Your Slack email matches no account here: ask an admin to add you, "
            "with the same email, to use /inc."
        )
    room = (
        WarRoom.objects.select_related("incident")
        .filter(channel_id=form["channel_id"] or "-")
        .first()
    )
    reply = run_command(
        user=user,
        incident=room.incident if room else None,
        text=form["text"],
        whois=_user_for,
    )
    return _ephemeral(reply)


@csrf_exempt
@require_POST
def interactivity(request: HttpRequest) -> HttpResponse:
    if not _verified(request):
        return _refused()
    try:
        payload = clean_payload(json.loads(request.POST.get("payload", "")))
        slack_id = payload["user"]["id"]
        actions = payload.get("actions") or []
    except (ValueError, KeyError, TypeError):
        return HttpResponse("bad payload", status=400, content_type="text/plain")
    user = _user_for(slack_id if isinstance(slack_id, str) else "")
    if user is None:
        return _ephemeral("Your Slack email matches no account here.")
    for action in actions if isinstance(actions, list) else []:
        if not isinstance(action, dict) or action.get("action_id") != ACK_ACTION:
            continue  # link buttons need no answer
        value = str(action.get("value", ""))
        valid = value.isascii() and value.isdigit() and len(value) < 18
        incident = Incident.objects.filter(pk=int(value)).first() if valid else None
        if incident is None:
            return _ephemeral("That incident no longer exists.")
        try:
            incident_acknowledge(incident=incident, actor=user)
        except IncidentError as exc:
            return _ephemeral(str(exc))
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> HttpResponse:
    """The Events API request URL: answer the URL check, acknowledge events at once."""
    if not _verified(request):
        return _refused()
    try:
        envelope = clean_payload(json.loads(request.body))
    except (ValueError, RecursionError):
        return HttpResponse("bad payload", status=400, content_type="text/plain")
    if not isinstance(envelope, dict):
        return HttpResponse("bad payload", status=400, content_type="text/plain")
    kind = envelope.get("type")
    if kind == "url_verification":
        challenge = envelope.get("challenge")
        if not isinstance(challenge, str) or not 0 < len(challenge) <= 200:
            return HttpResponse("bad challenge", status=400, content_type="text/plain")
        return JsonResponse({"challenge": challenge})
    if kind == "event_callback":
        event_handle(envelope)
    return HttpResponse(status=200)


@require_POST
@login_required
def war_room_open(request: HttpRequest, pk: int) -> HttpResponse:
    """The button for incidents that do not page: open their war room on request."""
    incident = get_object_or_404(Incident, pk=pk)
    if not slack_enabled():
        messages.error(request, "Slack is not configured: the timeline is the war room.")
    else:
        with transaction.atomic():
            _, created = war_room_request(incident=incident)
        messages.success(
            request, "Opening the war room in Slack." if created else "It has a war room already."
        )
    return redirect("incidents:detail", pk=pk)
