"""`{% evidence_section incident %}`: the evidence block of the incident page."""

from typing import Any

from django import template

from web.evidence import evidence_section as build

register = template.Library()


@register.inclusion_tag("incidents/partials/evidence.html")
def evidence_section(incident: Any, page: Any = None) -> dict:
    """From what the incident page already read when it is given, else from the database."""
    if page is None:
        return {"ev": build(incident.pk)}
    if page.evidence is None:
        return {"ev": None}
    evidence_set, items = page.evidence
    return {
        "ev": build(
            incident.pk, evidence_set=evidence_set, items=items, runbook=page.diagnosis_runbook()
        )
    }
