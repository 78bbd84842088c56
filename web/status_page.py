"""The public status page and its Atom feed, and publishing the customer notices they show.

Only published customer notices are public: an incident appears, and its service
changes state, once someone with `publish_status` has published a notice for it.
The page needs no login and is cacheable; it runs a fixed number of queries.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.contrib.syndication.views import Feed
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from incidents.choices import IncidentStatus, Severity
from incidents.models import Incident, StatusUpdate
from incidents.services import IncidentError, status_update_edit, status_update_publish

from .selectors import catalog_service_names

HISTORY_DAYS = 90
CACHE_SECONDS = 30
# What a public incident means for its service, by severity.
STATE_BY_SEVERITY = {
    Severity.SEV1: ("major", "Major outage"),
    Severity.SEV2: ("partial", "Partial outage"),
    Severity.SEV3: ("degraded", "Degraded performance"),
    Severity.SEV4: ("degraded", "Degraded performance"),
}
OPERATIONAL = ("operational", "Operational")
_RANK = {"operational": 0, "degraded": 1, "partial": 2, "major": 3}


def _published() -> Prefetch:
    notices = StatusUpdate.objects.filter(
        audience=StatusUpdate.Audience.CUSTOMER, published_at__isnull=False
    ).order_by("-published_at")
    return Prefetch("status_updates", queryset=notices, to_attr="public_updates")


def public_incidents(since: timedelta = timedelta(days=HISTORY_DAYS)) -> list[Incident]:
    """Incidents with at least one published customer notice, detected within `since`."""
    cutoff = timezone.now() - since
    return list(
        Incident.objects.filter(
            detected_at__gte=cutoff,
            status_updates__audience=StatusUpdate.Audience.CUSTOMER,
            status_updates__published_at__isnull=False,
        )
        .distinct()
        .only("id", "title", "severity", "status", "service", "detected_at", "resolved_at")
        .prefetch_related(_published())
        .order_by("-detected_at")
    )


@dataclass
class Component:
    name: str
    state: str
    label: str


def components(active: list[Incident]) -> list[Component]:
    names = catalog_service_names()
    states: dict[str, tuple[str, str]] = {n: OPERATIONAL for n in names}
    for incident in active:
        name = incident.service or "Other"
        state = STATE_BY_SEVERITY.get(incident.severity, OPERATIONAL)
        if _RANK[state[0]] > _RANK[states.get(name, OPERATIONAL)[0]]:
            states[name] = state
    return [Component(n, s, label) for n, (s, label) in sorted(states.items())]


@require_GET
@cache_control(public=True, max_age=CACHE_SECONDS)
def status_page(request: HttpRequest) -> HttpResponse:
    incidents = public_incidents()
    active = [i for i in incidents if i.status != IncidentStatus.RESOLVED]
    history = [i for i in incidents if i.status == IncidentStatus.RESOLVED]
    parts = components(active)
    worst = max((_RANK[c.state] for c in parts), default=0)
    response = render(
        request,
        "status/page.html",
        {
            "components": parts,
            "active": active,
            "history": history,
            "all_ok": worst == 0,
            "history_days": HISTORY_DAYS,
        },
    )
    # No cookies or CSRF: the same page for everyone, so any cache may keep it.
    response.cookies.clear()
    return response


class StatusFeed(Feed):
    """Every published customer notice of the last 90 days, newest first."""

    feed_type = Atom1Feed
    title = "Service status"
    subtitle = "Published updates about incidents"

    def link(self) -> str:
        return reverse("status:page")

    def items(self) -> list[StatusUpdate]:
        cutoff = timezone.now() - timedelta(days=HISTORY_DAYS)
        return list(
            StatusUpdate.objects.filter(
                audience=StatusUpdate.Audience.CUSTOMER,
                published_at__isnull=False,
                incident__detected_at__gte=cutoff,  # the page's 90 days
            )
            .select_related("incident")
            .order_by("-published_at")[:100]
        )

    def item_title(self, item: StatusUpdate) -> str:
        incident = item.incident
        state = "Resolved" if incident.status == IncidentStatus.RESOLVED else "Ongoing"
        return f"{state}: {incident.service or 'service'} incident #{incident.pk}"

    def item_description(self, item: StatusUpdate) -> str:
        return item.body

    def item_link(self, item: StatusUpdate) -> str:
        return reverse("status:page") + f"#incident-{item.incident_id}"

    def item_guid(self, item: StatusUpdate) -> str:
        return f"status-update-{item.pk}"

    def item_pubdate(self, item: StatusUpdate):
        return item.published_at

    def item_updateddate(self, item: StatusUpdate):
        return item.published_at


status_feed = cache_control(public=True, max_age=CACHE_SECONDS)(StatusFeed())


# --- publishing (the ops UI, behind login) -----------------------------------------------


@require_POST
def status_update_edit_view(request: HttpRequest, pk: int, update_pk: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    update = get_object_or_404(StatusUpdate, pk=update_pk, incident_id=pk)
    try:
        status_update_edit(update=update, body=request.POST.get("body", ""), actor=request.user)
    except IncidentError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Draft saved. It is not published.")
    return redirect("incidents:detail", pk=pk)


@require_POST
def status_update_publish_view(request: HttpRequest, pk: int, update_pk: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    update = get_object_or_404(StatusUpdate, pk=update_pk, incident_id=pk)
    try:
        status_update_publish(update=update, actor=request.user)
    except IncidentError as exc:
        messages.error(request, str(exc))
        return redirect("incidents:detail", pk=pk)
    messages.success(request, "Published on the status page.")
    return redirect("incidents:detail", pk=pk)
