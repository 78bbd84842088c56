"""The update cadence, enforced: nudge the comms lead (or the commander) in the war room."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.cadence import update_overdue_minutes, with_last_update
from incidents.choices import IncidentStatus, severity_info
from incidents.events import update_nudged_event
from incidents.models import Incident

from .client import slack_enabled
from .models import SlackPost, WarRoom
from .outbox import post_queue


def nudge_overdue_updates(*, now: datetime | None = None) -> int:
    """Nudge each open incident with a war room whose last update is past its cadence,
    at most once per cadence period; returns how many were nudged."""
    if not slack_enabled():
        return 0
    now = now or timezone.now()
    incidents = with_last_update(
        Incident.objects.exclude(status=IncidentStatus.RESOLVED)
        .filter(war_room__isnull=False)
        .exclude(war_room__channel_id="")
        .select_related("war_room", "comms_lead", "commander")
    )
    nudged = 0
    for incident in incidents:
        overdue = update_overdue_minutes(incident, now)
        info = severity_info(incident.severity)
        room: WarRoom = incident.war_room
        if not overdue:
            continue
        if room.last_nudged_at and room.last_nudged_at > now - timedelta(
            minutes=info.update_every_minutes
        ):
            continue
        with transaction.atomic():
            won = WarRoom.objects.filter(
                Q(last_nudged_at__isnull=True) | Q(last_nudged_at=room.last_nudged_at),
                pk=room.pk,
            ).update(last_nudged_at=now)
            if not won:
                continue  # another beat got there first
            who = incident.comms_lead or incident.commander
            update_nudged_event(
                incident=incident,
                overdue_minutes=overdue,
                nudged=who.get_username() if who else "the war room",
            )
            post_queue(
                room=room,
                kind=SlackPost.Kind.CHANNEL,
                payload={"nudge": True, "overdue": overdue, "cadence": info.cadence},
            )
        nudged += 1
    return nudged
