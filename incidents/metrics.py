"""Response-time figures of one incident: time to acknowledge, time to resolve.

Measured from detection. Pages, reports and the postmortem read them from here so
that every screen agrees on what each figure means.
"""

from datetime import timedelta

from .models import Incident


def time_to_acknowledge(incident: Incident) -> timedelta | None:
    """Detection to the first acknowledgement, or None while unacknowledged."""
    if incident.acknowledged_at is None:
        return None
    return max(incident.acknowledged_at - incident.detected_at, timedelta(0))


def time_to_resolve(incident: Incident) -> timedelta | None:
    """Detection to resolution, or None while open."""
    if incident.resolved_at is None:
        return None
    return max(incident.resolved_at - incident.detected_at, timedelta(0))
