"""Read queries for pages and commands."""

import difflib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from executor.choices import ActionStatus, CheckOutcome, ExecutionStatus
from executor.models import ActionRequest, CheckRun, Execution
from incidents.cadence import with_last_update
from incidents.choices import ROLE_FIELDS, IncidentStatus
from incidents.ingest.selectors import incident_alerts
from incidents.models import Incident
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook


def latest_runbook(incident: Incident):
    return incident.runbooks.order_by("-version").first()


def pipeline_finished(*, incident: Incident, timeout: float = 300.0, max_poll: float = 0.5):
    """(runbook, first execution) once the pipeline has settled, polling the database.

    Settled means: the latest runbook is final and, if ready, its first execution is
    no longer running. Returns what exists when the timeout passes.
    """

    deadline = time.monotonic() + timeout
    delay = min(0.02, max_poll)
    while True:
        runbook = latest_runbook(incident)
        execution = runbook.executions.order_by("started_at", "id").first() if runbook else None
        settled = runbook is not None and (
            runbook.status in (RunbookStatus.INVALID, RunbookStatus.FAILED)
            or (
                runbook.status == RunbookStatus.READY
                and execution is not None
                and execution.status != ExecutionStatus.RUNNING
            )
        )
        if settled or time.monotonic() > deadline:
            return runbook, execution
        time.sleep(delay)
        delay = min(delay * 2, max_poll)


# --- pages ---------------------------------------------------------------------


ROLE_RELATIONS = tuple(ROLE_FIELDS)


@dataclass(frozen=True)
class IncidentFilters:
    status: str = "open"  # "open", "all" or one IncidentStatus value
    severity: str = ""
    service: str = ""
    mine: bool = False
    q: str = ""


class OpenFirst:
    """Open incidents, most severe then newest first, then resolved ones, newest first:
    a sliceable sequence for Paginator.

    Two index-friendly queries instead of one ORDER BY over a CASE expression,
    which would sort every incident on each page view.
    """

    def __init__(self, open_qs: QuerySet, closed_qs: QuerySet) -> None:
        self.open_qs, self.closed_qs = open_qs, closed_qs
        self._open_count: int | None = None

    def open_count(self) -> int:
        if self._open_count is None:
            self._open_count = self.open_qs.count()
        return self._open_count

    def count(self) -> int:
        return self.open_count() + self.closed_qs.count()

    def __getitem__(self, item: slice) -> list:
        start, stop = item.start or 0, item.stop
        n_open = self.open_count()
        rows: list = []
        if start < n_open:
            rows.extend(self.open_qs[start : min(stop, n_open)])
        if stop > n_open:
            rows.extend(self.closed_qs[max(start - n_open, 0) : stop - n_open])
        return rows


# Checks whose result needs a look: a breach found, an error, or no answer in time.
FAILED_OUTCOMES = (CheckOutcome.WARN, CheckOutcome.ERROR, CheckOutcome.TIMEOUT)


def _count_of(rows: QuerySet, group: str) -> Subquery:
    """COUNT(*) of `rows` (filtered on an OuterRef) as a scalar subquery; NULL when none."""
    return Subquery(rows.values(group).annotate(n=Count("id")).values("n")[:1])


def incident_list(*, filters: IncidentFilters, user: Any = None) -> OpenFirst:
    """The list page's rows with commander and latest runbook state, in a bounded number of queries."""

    latest = Runbook.objects.filter(incident=OuterRef("pk")).order_by("-version")
    qs = with_last_update(
        Incident.objects.select_related("commander")
        .only(
            "id",
            "title",
            "severity",
            "status",
            "service",
            "detected_at",
            "acknowledged_at",
            "resolved_at",
            "commander__username",
        )
        .annotate(
            runbook_status=Subquery(latest.values("status")[:1]),
            runbook_version=Subquery(latest.values("version")[:1]),
            awaiting_approvals=_count_of(
                ActionRequest.objects.filter(
                    incident=OuterRef("pk"), status=ActionStatus.AWAITING_APPROVAL
                ),
                "incident",
            ),
            failed_checks=_count_of(
                CheckRun.objects.filter(
                    execution_id=Subquery(
                        Execution.objects.filter(runbook__incident=OuterRef(OuterRef("pk")))
                        .order_by("-started_at", "-id")
                        .values("id")[:1]
                    ),
                    outcome__in=FAILED_OUTCOMES,
                ),
                "execution",
            ),
        )
    )
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.service:
        qs = qs.filter(service=filters.service)
    if filters.mine and user is not None:
        mine = Q(created_by=user)
        for role in ROLE_RELATIONS:
            mine |= Q(**{role: user})
        qs = qs.filter(mine)
    if filters.q:
        q = filters.q
        by_text = Q(title__icontains=q) | Q(service__iexact=q)
        if re.fullmatch(r"#?\d{1,9}", q):
            by_text |= Q(pk=int(q.lstrip("#")))
        qs = qs.filter(by_text)
    qs = qs.order_by("-detected_at", "-id")
    resolved = IncidentStatus.RESOLVED
    # status IN (...) rather than != resolved: the (status, -detected_at) index serves both.
    # Open ones by urgency: the most severe first (SEV1 < SEV2 sorts right), then newest.
    open_ = qs.filter(status__in=[s for s in IncidentStatus.values if s != resolved]).order_by(
        "severity", "-detected_at", "-id"
    )
    empty = qs.none()
    if filters.status == "all":
        return OpenFirst(open_, qs.filter(status=resolved))
    if filters.status == "open":
        return OpenFirst(open_, empty)
    if filters.status == resolved:
        return OpenFirst(empty, qs.filter(status=resolved))
    return OpenFirst(qs.filter(status=filters.status), empty)


@dataclass
class IncidentPage:
    """Everything the incident page shows, loaded with a fixed number of queries."""

    incident: Incident
    runbooks: list  # every version, newest first, without the artifact
    runbook: Any  # the version shown (with its artifact), or None
    latest: Any  # the newest version (without its artifact), or None
    execution: Any  # the shown version's latest execution, with check runs prefetched
    actions: list
    timeline: list
    timeline_more: bool
    status_updates: list
    alerts: list = field(default_factory=list)  # the alerts that opened or joined it
    diff: list[tuple[str, str]] | None = None
    compare: Any = None
    users: list = field(default_factory=list)
    incident_actions: list = field(default_factory=list)  # every version's, for the draft

    def draft_facts(self) -> tuple[Any, list[str]]:
        """(newest version with an artifact, step ids of the actions that succeeded, in
        order): what a status-update draft reads, from what the page already loaded."""
        newest = next((r for r in self.runbooks if r.has_artifact), None)
        if newest is not None and newest is not self.runbook:
            newest = Runbook.objects.get(pk=newest.pk)  # an older version than the shown one
        succeeded = [a for a in self.incident_actions if a.status == ActionStatus.SUCCEEDED]
        succeeded.sort(key=lambda a: (a.finished_at is None, a.finished_at))
        return newest, [a.step_id for a in succeeded]

    @property
    def busy(self) -> bool:
        """Work is under way that will change what the page shows."""

        generating = (RunbookStatus.QUEUED, RunbookStatus.GENERATING)
        if self.latest is not None and self.latest.status in generating:
            return True
        if self.execution is not None and self.execution.status == ExecutionStatus.RUNNING:
            return True
        return any(a.status in (ActionStatus.RUNNING, ActionStatus.APPROVED) for a in self.actions)

    @property
    def waiting(self) -> bool:
        """Waiting on someone elsewhere (an approver in the admin): worth a slow look."""

        return any(a.status == ActionStatus.AWAITING_APPROVAL for a in self.actions)

    @property
    def poll_seconds(self) -> int | None:
        if self.busy:
            return 2
        if self.waiting:
            return 10
        return None


def incident_status_updates(*, incident: Incident, limit: int = 5) -> list:
    """The newest status updates with their authors, for the composer's "recent" list."""
    return list(incident.status_updates.select_related("author").order_by("-created_at")[:limit])


def incident_for_page(pk: int) -> Incident:
    return with_last_update(Incident.objects.select_related("created_by", *ROLE_RELATIONS)).get(
        pk=pk
    )


def incident_page(
    *,
    pk: int,
    version: int | None = None,
    compare: int | None = None,
    timeline_limit: int = 50,
    with_users: bool = True,
    with_status_updates: bool = True,
    with_alerts: bool = True,
) -> IncidentPage:
    """The incident page's data. The with_* parts are loaded only when asked for: the
    live poll renders neither the alerts nor (without its form) the status updates."""

    incident = incident_for_page(pk)
    newest = Runbook.objects.filter(incident=OuterRef("incident")).order_by("-version")
    shown = Value(version) if version is not None else Subquery(newest.values("version")[:1])
    # Every version without its artifact, except the one shown: one query, not two.
    runbooks = list(
        Runbook.objects.filter(incident=incident)
        .defer("artifact", "validation_errors")
        .annotate(
            has_artifact=ExpressionWrapper(Q(artifact__isnull=False), output_field=BooleanField()),
            shown_artifact=Case(When(version=shown, then=F("artifact")), output_field=JSONField()),
            shown_errors=Case(
                When(version=shown, then=F("validation_errors")), output_field=JSONField()
            ),
        )
        .order_by("-version")
    )
    latest = runbooks[0] if runbooks else None
    runbook = next((r for r in runbooks if r.version == version), latest)
    if runbook is not None:
        if runbook.version == version or version is None:
            runbook.artifact = runbook.shown_artifact
            runbook.validation_errors = runbook.shown_errors
        else:  # no such version: the newest is shown, and was not loaded in full
            runbook = Runbook.objects.get(pk=runbook.pk)
    execution = None
    actions: list = []
    incident_actions = list(
        ActionRequest.objects.filter(incident=incident)
        .select_related("requested_by")
        .order_by("id")
    )
    if runbook is not None:
        execution = (
            Execution.objects.filter(runbook=runbook)
            .prefetch_related("check_runs")
            .order_by("-started_at", "-id")
            .first()
        )
        actions = [a for a in incident_actions if a.runbook_id == runbook.pk]
    events = list(
        incident.timeline.select_related("actor").order_by("-created_at", "-id")[
            : timeline_limit + 1
        ]
    )
    page = IncidentPage(
        incident=incident,
        runbooks=runbooks,
        runbook=runbook,
        latest=latest,
        execution=execution,
        actions=actions,
        timeline=events[:timeline_limit],
        timeline_more=len(events) > timeline_limit,
        status_updates=incident_status_updates(incident=incident) if with_status_updates else [],
        alerts=list(incident_alerts(incident=incident, limit=50)) if with_alerts else [],
        incident_actions=incident_actions,
    )
    if runbook is not None and compare and compare != runbook.version:
        other = Runbook.objects.filter(incident=incident, version=compare).first()
        if other is not None:
            page.compare = other
            page.diff = runbook_diff(other, runbook)
    if with_users:
        page.users = list(
            get_user_model().objects.filter(is_active=True).order_by("username")[:500]
        )
    return page


def _pretty(document: Any) -> list[str]:
    if document is None:
        return ["(no document)"]
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def runbook_diff(old: Any, new: Any) -> list[tuple[str, str]]:
    """Unified diff of two versions' canonical JSON, as (kind, line) pairs for display."""
    lines = difflib.unified_diff(
        _pretty(old.artifact),
        _pretty(new.artifact),
        fromfile=f"v{old.version}",
        tofile=f"v{new.version}",
        lineterm="",
        n=2,
    )
    out: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out
