"""Read queries for the learning pages, and the learning loop others can ask."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents.models import Incident

from .choices import FOLLOW_UP_OPEN, PostmortemStatus
from .models import FollowUp, Postmortem


def postmortem_for_page(incident_id: int) -> Postmortem | None:
    return Postmortem.objects.select_related("incident").filter(incident_id=incident_id).first()


def follow_ups_of_incident(incident_id: int) -> QuerySet[FollowUp]:
    return FollowUp.objects.filter(incident_id=incident_id).select_related("owner")


def my_follow_ups(user: Any, *, include_closed: bool = False) -> QuerySet[FollowUp]:
    qs = FollowUp.objects.filter(owner=user).select_related("incident")
    if not include_closed:
        qs = qs.filter(status__in=FOLLOW_UP_OPEN)
    return qs.order_by("due_date", "priority", "pk")


def overdue_follow_ups(today: date | None = None) -> QuerySet[FollowUp]:
    today = today or timezone.localdate()
    return (
        FollowUp.objects.filter(status__in=FOLLOW_UP_OPEN, due_date__lt=today)
        .select_related("owner", "incident")
        .order_by("due_date", "pk")
    )


@dataclass(frozen=True)
class PastLesson:
    """What a published postmortem teaches about a similar incident."""

    incident_id: int
    title: str
    service: str
    severity: str
    resolved_at: Any
    root_cause: str
    root_cause_category: str
    resolving_actions: list[str]


def similar_past_incidents(
    *,
    service: str,
    category: str = "",
    exclude_incident_id: int | None = None,
    limit: int = 5,
) -> list[PastLesson]:
    """Published postmortems of the same service or root-cause category, newest first.

    The learning loop: what "similar past incidents" shows is the root cause people
    agreed on in review and the actions that resolved it, not a guess. One query.
    """
    if not service and not category:
        return []
    match = Q()
    if service:
        match |= Q(incident__service=service)
    if category:
        match |= Q(root_cause_category=category)
    qs = (
        Postmortem.objects.filter(match, status=PostmortemStatus.PUBLISHED)
        .select_related("incident")
        .order_by("-published_at")
    )
    if exclude_incident_id is not None:
        qs = qs.exclude(incident_id=exclude_incident_id)
    return [
        PastLesson(
            incident_id=pm.incident_id,
            title=pm.incident.title,
            service=pm.incident.service,
            severity=pm.incident.severity,
            resolved_at=pm.incident.resolved_at,
            root_cause=pm.root_cause,
            root_cause_category=pm.root_cause_category,
            resolving_actions=list(pm.resolving_actions),
        )
        for pm in qs[:limit]
    ]


def similar_to_incident(incident: Incident, *, limit: int = 5) -> list[PastLesson]:
    """similar_past_incidents for an incident: its service and its runbook's incident type."""
    runbook = incident.runbooks.filter(artifact__isnull=False).order_by("-version").first()
    category = (runbook.artifact or {}).get("incident_type", "") if runbook else ""
    return similar_past_incidents(
        service=incident.service, category=category, exclude_incident_id=incident.pk, limit=limit
    )
