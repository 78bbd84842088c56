"""`{% evidence_section incident %}`: the evidence block of the incident page."""

from typing import Any

from django import template

from web.evidence import evidence_section as build

register = template.Library()


@register.inclusion_tag("incidents/partials/evidence.html")
def evidence_section(incident: Any) -> dict:
    return {"ev": build(incident.pk)}
