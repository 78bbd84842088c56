"""Read queries for pages and commands."""

import difflib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    Func,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    When,
)
from django.db.models.functions import Coalesce

from coordination.client import slack_enabled
from evidence.models import Evidence, EvidenceSet
from executor.choices import ActionStatus, CheckOutcome, ExecutionStatus
from executor.models import ActionRequest, CheckRun, Execution, SafeModeChange
from executor.models import Service as CatalogService
from executor.policy import granted_permissions, safe_mode_changes
from incidents.cadence import with_last_update
from incidents.choices import ROLE_FIELDS, IncidentStatus
from incidents.compiled import Compiled
from incidents.ingest.selectors import incident_alerts
from incidents.models import Incident
from incidents.nested import JSONRows, moment, rows
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
    which would sort every incident on each page view: each part reads its ids in
    order as far as the count goes (`count_limit`), which both counts and pages them;
    then one statement reads the page's rows.
    """

    def __init__(
        self, open_qs: QuerySet, closed_qs: QuerySet, decorate: Callable[[list[int]], list]
    ) -> None:
        self.open_qs, self.closed_qs = open_qs, closed_qs
        self.decorate = decorate  # the rows of these ids, in any order
        self._ids: dict[str, list[int]] = {}
        # Count no further than this (None: exactly). Counting 98,000 resolved incidents,
        # or the 10,000 a common word matches, costs more than the rest of the page.
        self.count_limit: int | None = None
        self.capped = False  # the count stopped at count_limit: there are more

    def _part_ids(self, part: str) -> list[int]:
        """The part's ids in list order, at most one beyond what the count may show
        (every one when there is no count_limit)."""
        if part not in self._ids:
            qs = self.open_qs if part == "open" else self.closed_qs
            room = self.count_limit
            if room is not None and part == "closed":
                room -= len(self._part_ids("open"))
            ids = qs.values_list("pk", flat=True)
            if room is not None:
                ids = ids[: room + 1] if room >= 0 else ids.none()
            self._ids[part] = list(ids)
        return self._ids[part]

    def count(self) -> int:
        total = len(self._part_ids("open")) + len(self._part_ids("closed"))
        if self.count_limit is not None and total > self.count_limit:
            self.capped = True
            return self.count_limit
        return total

    def __getitem__(self, item: slice) -> list:
        ids = (self._part_ids("open") + self._part_ids("closed"))[item]
        if not ids:
            return []
        by_id = {row.pk: row for row in self.decorate(ids)}
        return [by_id[pk] for pk in ids if pk in by_id]


# Checks whose result needs a look: a breach found, an error, or no answer in time.
FAILED_OUTCOMES = (CheckOutcome.WARN, CheckOutcome.ERROR, CheckOutcome.TIMEOUT)


def _count_of(rows: QuerySet, group: str) -> Subquery:
    """COUNT(*) of `rows` (filtered on an OuterRef) as a scalar subquery; NULL when none."""
    return Subquery(rows.values(group).annotate(n=Count("id")).values("n")[:1])


class _SpaceJoined(Func):
    """`a || ' ' || b`: the plain concatenation the search index is built on (Concat
    would wrap each side in COALESCE, which the index expression does not have)."""

    arg_joiner = " || ' ' || "
    template = "(%(expressions)s)"
    output_field = TextField()


def incident_search_text() -> Func:
    """The text the list's search looks in: title and service, one string."""
    return _SpaceJoined("title", "service")


def incident_search(qs: QuerySet, q: str) -> QuerySet:
    """Incidents whose title or service contains `q` (any case), or whose number it is.

    UPPER(title || ' ' || service) LIKE UPPER('%q%'): the expression the trigram index
    is built on (incidents migration 0011), so PostgreSQL answers from the index.
    """
    by_text = Q(search_text__icontains=q)
    if re.fullmatch(r"#?\d{1,9}", q):
        by_text |= Q(pk=int(q.lstrip("#")))
    return qs.alias(search_text=incident_search_text()).filter(by_text)


def incident_list(*, filters: IncidentFilters, user: Any = None) -> OpenFirst:
    """The list page's rows with commander and latest runbook state, in a bounded number of queries."""

    qs = Incident.objects.all()
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
        qs = incident_search(qs, filters.q)
    qs = qs.order_by("-detected_at", "-id")
    resolved = IncidentStatus.RESOLVED
    # status IN (...) rather than != resolved: the (status, -detected_at) index serves both.
    # Open ones by urgency: the most severe first (SEV1 < SEV2 sorts right), then newest.
    open_ = qs.filter(status__in=[s for s in IncidentStatus.values if s != resolved]).order_by(
        "severity", "-detected_at", "-id"
    )
    empty = qs.none()
    if filters.status == "all":
        return OpenFirst(open_, qs.filter(status=resolved), list_rows)
    if filters.status == "open":
        return OpenFirst(open_, empty, list_rows)
    if filters.status == resolved:
        return OpenFirst(empty, qs.filter(status=resolved), list_rows)
    return OpenFirst(qs.filter(status=filters.status), empty, list_rows)


# The incident's own columns a row of the list shows (and the commander's id).
_LIST_FIELDS = (
    "id",
    "title",
    "severity",
    "status",
    "service",
    "detected_at",
    "acknowledged_at",
    "resolved_at",
    "commander_id",
)
# The columns computed for each row (by _list_columns).
_LIST_ANNOTATIONS = (
    "runbook_status",
    "runbook_version",
    "awaiting_approvals",
    "failed_checks",
    "last_update_at",
)


def _list_columns(_shape: None, *, ids: list[int]) -> QuerySet:
    """What a row of the list shows: commander, latest runbook state, pending approvals,
    failing checks and the last update, for the rows of one page only."""
    latest = Runbook.objects.filter(incident=OuterRef("pk")).order_by("-version")
    return with_last_update(
        Incident.objects.filter(pk__in=ids).annotate(
            commander_name=F("commander__username"),
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
    ).values(*_LIST_FIELDS, "commander_name", *_LIST_ANNOTATIONS)


# Compiled once per page length: the page's SQL is the same but for the ids.
_list_query = Compiled(_list_columns)


class ListRow(SimpleNamespace):
    """One row of the list: the incident's columns named as on the model (`pk` too),
    its commander's username (`commander_name`) and the row's extra columns."""

    def get_status_display(self) -> str:
        return _STATUS_LABELS.get(self.status, self.status)


_STATUS_LABELS = dict(IncidentStatus.choices)


def list_rows(ids: list[int]) -> list[ListRow]:
    """The list's rows for these incidents, in any order."""
    return [ListRow(pk=row["id"], **row) for row in _list_query.rows(ids=ids)]


@dataclass
class IncidentPage:
    """Everything the incident page shows, loaded with a fixed number of queries."""

    incident: Incident
    runbooks: (
        list  # every version, newest first; only the versions the page reads carry an artifact
    )
    runbook: Any  # the version shown (with its artifact), or None
    latest: Any  # the newest version, or None
    execution: Any  # the shown version's latest execution, or None
    actions: list
    timeline: list
    timeline_more: bool
    status_updates: list
    checks: list = field(default_factory=list)  # the execution's check runs, in order
    alerts: list = field(default_factory=list)  # the alerts that opened or joined it
    diff: list[tuple[str, str]] | None = None
    compare: Any = None
    users: list = field(default_factory=list)
    incident_actions: list = field(default_factory=list)  # every version's, for the draft
    evidence: tuple[Any, list] | None = None  # (latest evidence set, its items)
    safe_mode: Any = None  # the change that turned safe mode on, or None when off

    def draft_facts(self) -> tuple[Any, list[str]]:
        """(newest version with an artifact, step ids of the actions that succeeded, in
        order): what a status-update draft reads, from what the page already loaded."""
        newest = next((r for r in self.runbooks if r.has_artifact), None)
        succeeded = [a for a in self.incident_actions if a.status == ActionStatus.SUCCEEDED]
        succeeded.sort(key=lambda a: (a.finished_at is None, a.finished_at))
        return newest, [a.step_id for a in succeeded]

    def diagnosis_runbook(self) -> Any:
        """The newest ready version: the one whose diagnosis the evidence section shows."""
        return next((r for r in self.runbooks if r.status == RunbookStatus.READY), None)

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


# What the page nests in the rows it reads anyway (incidents/nested.py), by field path.
USER_COLUMNS = ("username", "id")
SAFE_MODE_COLUMNS = ("created_at", "id", "enabled", "automatic", "reason", "actor_id")
SAFE_MODE_COLUMNS += ("actor__username",)
EXECUTION_COLUMNS = ("started_at", "id", "status", "trigger", "error", "finished_at")
CHECK_COLUMNS = ("position", "id", "check_id", "action", "target", "outcome", "summary")
CHECK_COLUMNS += ("output", "duration_ms")
PERMISSION_COLUMNS = ("content_type__app_label", "codename")


# Backends whose permissions are exactly ModelBackend's (the user's own and their groups').
MODEL_PERMISSION_BACKENDS = (
    ["django.contrib.auth.backends.ModelBackend"],
    ["incident_response.auth_backends.OneQueryModelBackend"],
)


def _permissions_to_read(user: Any) -> bool:
    """Whether the page should read the viewer's permissions with the incident: only
    where the backend would read them itself (ModelBackend's rules) the first time it is
    asked."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and not user.is_superuser
        and not hasattr(user, "_perm_cache")
        and settings.AUTHENTICATION_BACKENDS in MODEL_PERMISSION_BACKENDS
    )


def _incident_context_query(
    shape: tuple[bool, bool, bool], *, pk: int, viewer_id: int = 0
) -> QuerySet:
    permissions, with_users, war_room = shape
    related = ["created_by", *ROLE_RELATIONS] + (["war_room"] if war_room else [])
    nested: dict[str, Any] = {
        "safe_mode_rows": JSONRows(safe_mode_changes()[:1], *SAFE_MODE_COLUMNS),
        "evidence_set_id": Subquery(
            EvidenceSet.objects.filter(incident=OuterRef("pk"))
            .order_by("-created_at", "-id")
            .values("id")[:1]
        ),
    }
    if permissions:
        nested["permission_rows"] = JSONRows(granted_permissions(viewer_id), *PERMISSION_COLUMNS)
    if with_users:
        active = get_user_model().objects.filter(is_active=True).order_by("username")[:500]
        nested["user_rows"] = JSONRows(active, *USER_COLUMNS)
    incident = with_last_update(Incident.objects.select_related(*related)).annotate(**nested)
    return incident.filter(pk=pk).order_by()


# Its nested reads cost more to build than to answer: built once per shape.
_incident_context = Compiled(_incident_context_query)


def _incident_with_context(pk: int, *, viewer: Any, with_users: bool, war_room: bool) -> Incident:
    """The incident with its roles, and nested in the same row what the page around it
    needs: the safe-mode switch, the viewer's permissions, the users a role may go to,
    the latest evidence set's id (and the war room when Slack is configured)."""
    permissions = _permissions_to_read(viewer)
    args = {"pk": pk, "viewer_id": viewer.pk} if permissions else {"pk": pk}
    incident = _incident_context.first((permissions, with_users, war_room), **args)
    if incident is None:
        raise Incident.DoesNotExist(f"no incident {pk}")
    return incident


@dataclass(frozen=True)
class ListContext:
    """What the list page shows around its rows."""

    safe_mode: Any  # the change that turned safe mode on, or None when off
    service_names: list[str]  # the catalog's, for the service filter's suggestions


def _list_context_query(permissions: bool, *, viewer_id: int) -> QuerySet:
    nested: dict[str, Any] = {
        "safe_mode_rows": JSONRows(safe_mode_changes()[:1], *SAFE_MODE_COLUMNS),
        "service_rows": JSONRows(_catalog_services(), "name"),
    }
    if permissions:
        nested["permission_rows"] = JSONRows(granted_permissions(viewer_id), *PERMISSION_COLUMNS)
    return get_user_model().objects.filter(pk=viewer_id).values("pk", **nested)


# Compiled once with and once without the permissions: the SQL differs only in the viewer.
_list_context_compiled = Compiled(_list_context_query)


def list_context(viewer: Any) -> ListContext:
    """The safe-mode switch and the catalog's service names, with the viewer's
    permissions (filled into their cache), in one statement on the viewer's own row:
    three statements otherwise, on a page whose rows take only two."""
    permissions = _permissions_to_read(viewer)
    found = _list_context_compiled.first(permissions, viewer_id=viewer.pk) or {}
    holder = SimpleNamespace(**{"safe_mode_rows": "", "service_rows": "", **found})
    safe_mode, _ = _unnest_context(holder, viewer)
    return ListContext(safe_mode, [name for (name,) in rows(holder.service_rows)])


def _catalog_services() -> QuerySet:
    """The catalog's services by name, as many as a page offers (suggestions, components)."""
    return CatalogService.objects.order_by("name")[:200]


def catalog_service_names() -> list[str]:
    return list(_catalog_services().values_list("name", flat=True))


def _unnest_context(holder: Any, viewer: Any) -> tuple[Any, list]:
    """(safe-mode state, users) from a row's nested columns (the incident's, or the
    viewer's on the list); fills the viewer's permission cache where ModelBackend looks
    for it."""
    User = get_user_model()
    state = None
    for created, pk, enabled, automatic, reason, actor_id, actor_name in rows(
        holder.safe_mode_rows
    ):
        if enabled:
            state = SafeModeChange(
                pk=pk,
                enabled=True,
                automatic=bool(automatic),
                reason=reason,
                created_at=moment(created),
                actor_id=actor_id,
            )
            if actor_id:
                state.actor = User(pk=actor_id, username=actor_name)
    if hasattr(holder, "permission_rows"):
        viewer._perm_cache = {f"{app}.{code}" for app, code in rows(holder.permission_rows)}
    users = [User(pk=pk, username=name) for name, pk in rows(getattr(holder, "user_rows", ""))]
    return state, users


def _shown_execution(runbook: Any) -> tuple[Any, list]:
    """(latest execution, its check runs) of the shown version, from its nested columns."""
    execution = None
    for started, pk, status, trigger, error, finished in rows(runbook.execution_rows)[-1:]:
        execution = Execution(
            pk=pk,
            runbook_id=runbook.pk,
            status=status,
            trigger=trigger,
            error=error,
            started_at=moment(started),
            finished_at=moment(finished),
        )
    checks = [
        CheckRun(
            pk=pk,
            execution=execution,
            position=position,
            check_id=check_id,
            action=action,
            target=target,
            outcome=outcome,
            summary=summary,
            output=output,
            duration_ms=duration_ms,
        )
        for position, pk, check_id, action, target, outcome, summary, output, duration_ms in rows(
            runbook.check_rows
        )
    ]
    return execution, checks if execution is not None else []


def _runbook_versions_query(
    shape: tuple[bool, bool], *, incident_id: int, version: int = 0, compare: int = 0
) -> QuerySet:
    asked, comparing = shape
    mine = Runbook.objects.filter(incident=OuterRef("incident"))
    newest = mine.order_by("-version").values("version")[:1]
    # The version asked for if it exists, else the newest.
    shown = Subquery(newest)
    if asked:
        shown = Coalesce(
            Subquery(mine.filter(version=version).order_by().values("version")[:1]), newest
        )
    draft = mine.filter(artifact__isnull=False).order_by("-version").values("version")[:1]
    diagnosis = mine.filter(status=RunbookStatus.READY).order_by("-version").values("version")[:1]
    used = Q(version=shown) | Q(version=Subquery(draft)) | Q(version=Subquery(diagnosis))
    if comparing:
        used |= Q(version=compare)
    executions = Execution.objects.filter(runbook=OuterRef("pk")).order_by("-started_at", "-id")
    latest_execution = (
        Execution.objects.filter(runbook=OuterRef(OuterRef("pk")))
        .order_by("-started_at", "-id")
        .values("id")[:1]
    )
    checks = CheckRun.objects.filter(execution_id=Subquery(latest_execution)).order_by()
    is_shown = Q(version=shown)
    return (
        Runbook.objects.filter(incident_id=incident_id)
        .defer("artifact", "validation_errors")
        .annotate(
            has_artifact=ExpressionWrapper(Q(artifact__isnull=False), output_field=BooleanField()),
            is_shown=ExpressionWrapper(is_shown, output_field=BooleanField()),
            used_artifact=Case(When(used, then=F("artifact")), output_field=JSONField()),
            shown_errors=Case(
                When(is_shown, then=F("validation_errors")), output_field=JSONField()
            ),
            execution_rows=Case(
                When(is_shown, then=JSONRows(executions[:1], *EXECUTION_COLUMNS)),
                output_field=TextField(),
            ),
            check_rows=Case(
                When(is_shown, then=JSONRows(checks, *CHECK_COLUMNS)), output_field=TextField()
            ),
        )
        .order_by("-version")
    )


# The page's costliest statement to build (seven subqueries): built once per shape.
_runbook_versions_compiled = Compiled(_runbook_versions_query)


def _runbook_versions(incident: Incident, *, version: int | None, compare: int | None) -> list:
    """Every version, newest first, in one query. The artifact is read only for the
    versions the page uses (shown, compared, the draft's, the diagnosis'), and the shown
    version carries its latest execution and check runs, nested."""
    args = {"incident_id": incident.pk}
    if version is not None:
        args["version"] = version
    if compare:
        args["compare"] = compare
    return _runbook_versions_compiled.rows((version is not None, bool(compare)), **args)


_incident_actions = Compiled(
    lambda shape, *, incident_id: (
        ActionRequest.objects.filter(incident_id=incident_id)
        .select_related("requested_by")
        .order_by("id")
    )
)


def incident_page(
    *,
    pk: int,
    version: int | None = None,
    compare: int | None = None,
    timeline_limit: int = 50,
    viewer: Any = None,
    with_users: bool = True,
    with_status_updates: bool = True,
    with_alerts: bool = True,
    with_evidence: bool = True,
) -> IncidentPage:
    """The incident page's data. The with_* parts are loaded only when asked for: the
    live poll renders neither the alerts nor (without its form) the status updates.

    Everything the page shows comes from these queries (the templates read no more):
    the incident with its context, the versions with the shown one's checks, the
    actions, the timeline, and, when asked, status updates, alerts and evidence.
    """

    incident = _incident_with_context(
        pk, viewer=viewer, with_users=with_users, war_room=slack_enabled()
    )
    safe_mode, users = _unnest_context(incident, viewer)
    runbooks = _runbook_versions(incident, version=version, compare=compare)
    for r in runbooks:
        # Only the versions read in full carry their artifact; the rest stay deferred
        # (reading one would cost a query, which the page never does).
        if r.used_artifact is not None or r.is_shown or not r.has_artifact:
            r.artifact = r.used_artifact
        if r.is_shown:
            r.validation_errors = r.shown_errors
    latest = runbooks[0] if runbooks else None
    runbook = next((r for r in runbooks if r.is_shown), latest)
    execution, checks = _shown_execution(runbook) if runbook is not None else (None, [])
    actions: list = []
    incident_actions: list = []
    if runbooks:  # actions come from a runbook: none without one
        incident_actions = _incident_actions.rows(incident_id=incident.pk)
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
        checks=checks,
        actions=actions,
        timeline=events[:timeline_limit],
        timeline_more=len(events) > timeline_limit,
        status_updates=incident_status_updates(incident=incident) if with_status_updates else [],
        alerts=list(incident_alerts(incident=incident, limit=50)) if with_alerts else [],
        incident_actions=incident_actions,
        users=users,
        safe_mode=safe_mode,
    )
    if with_evidence and incident.evidence_set_id is not None:
        items = list(
            Evidence.objects.filter(evidence_set_id=incident.evidence_set_id)
            .select_related("evidence_set")
            .order_by("id")
        )
        evidence_set = (
            items[0].evidence_set
            if items
            else EvidenceSet.objects.get(pk=incident.evidence_set_id)  # a set with no items
        )
        page.evidence = (evidence_set, items)
    if runbook is not None and compare and compare != runbook.version:
        other = next((r for r in runbooks if r.version == compare), None)
        if other is not None:
            page.compare = other
            page.diff = runbook_diff(other, runbook)
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
