"""`/inc`: run the incident from its war room, through the same services as the web UI.

Each subcommand is a function taking the Django user, the incident of the channel
(or None) and the rest of the text, and returning what to tell the person.
"""

import re
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from incidents.choices import IncidentStatus, Severity
from incidents.models import Incident
from incidents.services import (
    ROLE_FIELDS,
    IncidentError,
    incident_acknowledge,
    incident_add_note,
    incident_assign_role,
    incident_declare,
    incident_set_severity,
    incident_transition,
    status_update_post,
)

from . import cards

HELP = """*/inc* runs the incident of this channel:
• `/inc declare <title> [SEV1-4]` declare an incident (anywhere)
• `/inc ack` acknowledge it
• `/inc sev <SEV1-4>` change its severity
• `/inc role <commander|comms|tech|scribe> @person` give a role
• `/inc update <text>` post an internal status update
• `/inc note <text>` add a note to the timeline
• `/inc status` show where it stands
• `/inc resolve` resolve it
Approving actions stays in the approval queue."""

ROLE_ALIASES = {
    "commander": "commander",
    "ic": "commander",
    "comms": "comms_lead",
    "comms_lead": "comms_lead",
    "tech": "tech_lead",
    "tech_lead": "tech_lead",
    "scribe": "scribe",
}
MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")


class CommandError(Exception):
    """What the person typed cannot be done; the message says why."""


def _need(incident: Incident | None) -> Incident:
    if incident is None:
        raise CommandError("Run this in an incident's war room channel.")
    return incident


def _declare(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    words = rest.split()
    severity = Severity.SEV3
    if words and words[-1].upper() in Severity.values:
        severity = words.pop().upper()
    title = " ".join(words)
    if not title:
        raise CommandError("Usage: `/inc declare <title> [SEV1-4]`.")
    declared = incident_declare(title=title, description="", severity=severity, actor=user)
    return f"Declared #{declared.pk} {declared.title} ({severity}): {cards.incident_url(declared)}"


def _ack(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    incident = _need(incident)
    was = incident.acknowledged_at
    incident_acknowledge(incident=incident, actor=user)
    return "Already acknowledged." if was else f"Acknowledged #{incident.pk}."


def _sev(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    incident = _need(incident)
    severity = rest.strip().upper()
    if severity not in Severity.values:
        raise CommandError(f"Usage: `/inc sev <{'|'.join(Severity.values)}>`.")
    incident_set_severity(incident=incident, severity=severity, actor=user)
    return f"#{incident.pk} is {severity}."


def _role(user: Any, incident: Incident | None, rest: str, *, whois: Callable, **_: Any) -> str:
    incident = _need(incident)
    words = rest.split()
    if len(words) != 2 or words[0].lower() not in ROLE_ALIASES or not MENTION.match(words[1]):
        raise CommandError(
            "Usage: `/inc role <commander|comms|tech|scribe> @person` (mention the person)."
        )
    holder = whois(MENTION.match(words[1]).group(1))
    if holder is None:
        raise CommandError(f"{words[1]} has no account here with the same email.")
    role = ROLE_ALIASES[words[0].lower()]
    incident_assign_role(incident=incident, role=role, user=holder, actor=user)
    return f"{holder.get_username()} is now {ROLE_FIELDS[role]} of #{incident.pk}."


def _update(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    incident = _need(incident)
    if not rest.strip():
        raise CommandError("Usage: `/inc update <text>`.")
    status_update_post(incident=incident, audience="internal", body=rest, actor=user)
    return "Internal update posted."


def _note(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    incident = _need(incident)
    if not rest.strip():
        raise CommandError("Usage: `/inc note <text>`.")
    incident_add_note(incident=incident, text=rest, actor=user)
    return "Noted on the timeline."


def _status(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    return cards.status_line(_need(incident))


def _resolve(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    incident = _need(incident)
    if incident.status == IncidentStatus.RESOLVED:
        return "Already resolved."
    incident_transition(incident=incident, to_status=IncidentStatus.RESOLVED, actor=user)
    return f"Resolved #{incident.pk}."


def _help(user: Any, incident: Incident | None, rest: str, **_: Any) -> str:
    return HELP


COMMANDS: dict[str, Callable[..., str]] = {
    "declare": _declare,
    "ack": _ack,
    "sev": _sev,
    "role": _role,
    "update": _update,
    "note": _note,
    "status": _status,
    "resolve": _resolve,
    "help": _help,
}


def run_command(*, user: Any, incident: Incident | None, text: str, whois: Callable) -> str:
    """Run one `/inc` text as `user`; the reply for the person (errors included)."""
    head, _, rest = (text or "").strip().partition(" ")
    handler = COMMANDS.get(head.lower() or "help")
    if handler is None:
        return f"Unknown subcommand `{head[:40]}`.\n{HELP}"
    try:
        return handler(user, incident, rest.strip(), whois=whois)
    except (CommandError, IncidentError) as exc:
        return str(exc)


def user_for_email(email: str | None) -> Any:
    """The active Django user with this email (case-insensitive), or None."""
    if not email:
        return None
    matches = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    return matches[0] if len(matches) == 1 else None
