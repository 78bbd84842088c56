"""Stakeholder and executive updates by email (Django's email framework).

The lists come from STAKEHOLDER_EMAILS: keys are service names (as the catalog names
them) or severities, values lists of addresses. An executive summary goes out when
written; a customer notice when it is published.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail

from incidents.events import stakeholders_emailed_event
from incidents.models import Incident, StatusUpdate

logger = logging.getLogger(__name__)


def stakeholders_for(incident: Incident) -> list[str]:
    lists = settings.STAKEHOLDER_EMAILS or {}
    found = [*lists.get(incident.service, []), *lists.get(incident.severity, [])]
    return sorted({address.strip() for address in found if address and address.strip()})


def stakeholders_email(*, status_update_id: int) -> int:
    """Email one update to the incident's stakeholders; how many were addressed."""
    update = StatusUpdate.objects.select_related("incident").filter(pk=status_update_id).first()
    if update is None:
        return 0
    incident = update.incident
    recipients = stakeholders_for(incident)
    if not recipients:
        return 0
    subject = (
        f"[{incident.severity}] {update.get_audience_display()}: #{incident.pk} {incident.title}"
    )
    try:
        send_mail(subject[:200], update.body, None, recipients)
    except Exception:  # a mail outage is logged; the update itself stands
        logger.exception("stakeholder email for status update %s failed", update.pk)
        return 0
    stakeholders_emailed_event(
        incident=incident, status_update_id=update.pk, recipients=len(recipients)
    )
    return len(recipients)
