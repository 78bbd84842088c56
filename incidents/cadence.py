"""How late an incident's next status update is, by the severity table's cadence."""

from datetime import datetime, timedelta

from django.db.models import Max, OuterRef, QuerySet, Subquery

from .choices import IncidentStatus, severity_info
from .models import Incident, StatusUpdate


def with_last_update(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    """Annotate `last_update_at`: the newest published status update (drafts do not count)."""
    # A subquery, not a join: the list's other columns need no GROUP BY.
    newest = StatusUpdate.objects.filter(incident=OuterRef("pk"), published_at__isnull=False)
    return incidents.annotate(
        last_update_at=Subquery(newest.order_by("-created_at").values("created_at")[:1])
    )


def update_overdue_minutes(
    incident: Incident, now: datetime, last_update_at: datetime | None = None
) -> int:
    """Minutes past the cadence since the last update (or detection); 0 when on time."""
    if incident.status == IncidentStatus.RESOLVED:
        return 0
    if last_update_at is None and not hasattr(incident, "last_update_at"):
        last_update_at = incident.status_updates.filter(published_at__isnull=False).aggregate(
            last=Max("created_at")
        )["last"]
    last = last_update_at or getattr(incident, "last_update_at", None) or incident.detected_at
    due = last + timedelta(minutes=severity_info(incident.severity).update_every_minutes)
    return max(int((now - due).total_seconds() // 60), 0)
