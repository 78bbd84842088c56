"""Read queries for pages that show alerts."""

import time

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from incidents.models import Alert, AlertSource, Incident


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


# --- the webhook's source lookup, cached briefly per process --------------------------

_SOURCES: dict[str, tuple[float, AlertSource]] = {}


def hook_source(*, slug: str) -> AlertSource | None:
    """The enabled source a webhook URL names, or None.

    Every delivery needs it, so each process keeps it for INGEST_SOURCE_CACHE_SECONDS
    (saving a query per request). A change saved in this process applies at once; one
    saved elsewhere (admin in another worker) within that many seconds.
    """
    ttl = settings.INGEST_SOURCE_CACHE_SECONDS
    hit = _SOURCES.get(slug)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    source = AlertSource.objects.filter(slug=slug, enabled=True).first()
    if source is None:
        _SOURCES.pop(slug, None)
    elif ttl > 0:
        _SOURCES[slug] = (time.monotonic() + ttl, source)
    return source


@receiver([post_save, post_delete], sender=AlertSource)
def _forget_sources(**kwargs) -> None:
    _SOURCES.clear()
