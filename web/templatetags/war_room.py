"""The incident header's war room link or button (Slack, when it is configured)."""

from typing import Any

from django import template

from coordination.client import slack_enabled
from coordination.models import WarRoom

register = template.Library()


@register.inclusion_tag("incidents/partials/war_room.html")
def war_room(incident: Any) -> dict:
    enabled = slack_enabled()
    room = WarRoom.objects.filter(incident_id=incident.pk).first() if enabled else None
    return {"enabled": enabled, "room": room, "incident": incident}
