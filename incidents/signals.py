"""What the incidents stage announces to the next one.

A lower app never imports a higher one; it sends one of these signals and
`incident_response.pipeline` starts the next stage. Senders call them inside their
transaction; receivers queue their work with `transaction.on_commit`.
"""

from typing import Any

from django.dispatch import Signal

# An incident was declared (web UI, command, /inc, or a first alert): diagnose it now.
# Arguments: incident (Incident), actor (the user or None).
incident_declared = Signal()

# Alerts opened an incident (diagnose it at once), or joined one that has a runbook
# (diagnose again, debounced). Arguments: incident_id (int), opened (bool), first (bool:
# this batch started owing the refresh; later ones find it owed already).
incident_alerts_changed = Signal()

# An incident was resolved: draft its postmortem once the transaction commits.
# Arguments: incident_id (int), actor (the user or None).
incident_resolved = Signal()


# Rows were appended to incidents' timelines (inside the writer's transaction), once per
# write: a batch arrives as one list, so an observer can read what it needs in one query.
# Arguments: events (list[TimelineEvent]). Optional observers (the war room); none is fine.
timeline_recorded = Signal()


def announce(signal: Signal, **kwargs: Any) -> list:
    """Send a hand-off signal; a hand-off nobody listens to is a wiring bug, never silent."""
    responses = signal.send(sender=None, **kwargs)
    if not responses:
        raise RuntimeError("no stage listens to this hand-off: is the pipeline app installed?")
    return responses
