"""Read queries for pages that show alerts."""

from django.db.models import QuerySet

from incidents.models import Alert, Incident


def incident_alerts(*, incident: Incident | int, limit: int = 200) -> QuerySet[Alert]:
    """An incident's alerts, newest first, with their source (one query for the list)."""
    incident_id = incident if isinstance(incident, int) else incident.pk
    return (
        Alert.objects.filter(incident_id=incident_id)
        .select_related("source")
        .only(
            "id",
            "title",
            "status",
            "severity",
            "service",
            "labels",
            "source_url",
            "count",
            "first_seen",
            "last_seen",
            "starts_at",
            "ends_at",
            "source__name",
            "source__kind",
        )
        .order_by("-last_seen")[:limit]
    )
