"""The incident header's war room link or button (Slack, when it is configured)."""

from typing import Any

from django import template

from coordination.client import slack_enabled
from coordination.models import WarRoom

register = template.Library()


@register.inclusion_tag("incidents/partials/war_room.html")
def war_room(incident: Any) -> dict:
    enabled = slack_enabled()
    room = None
    if enabled:
        cache = incident._state.fields_cache
        if "war_room" in cache:  # the page read it with the incident
            room = cache["war_room"]
        else:
            room = WarRoom.objects.filter(incident_id=incident.pk).first()
    return {"enabled": enabled, "room": room, "incident": incident}
