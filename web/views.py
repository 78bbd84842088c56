"""The ops web UI. Views parse input, call a service or a selector, and render.

Every POST on the incident page answers an htmx request with the page's live
parts as out-of-band swaps (plus the submitted form, re-rendered with its errors
or emptied), and a plain request with a redirect, or the whole page when a form
has errors, so nothing typed is lost either way.
"""

import re
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from executor import services as executor_services
from executor.models import ActionRequest
from executor.policy import is_responder
from executor.safe_mode import SafeModeError, safe_mode_disable, safe_mode_enable
from executor.services import ExecutorError, action_request_run
from incidents.choices import ROLE_FIELDS
from incidents.models import Incident
from incidents.services import (
    IncidentError,
    incident_acknowledge,
    incident_add_note,
    incident_assign_role,
    incident_declare,
    incident_set_severity,
    incident_transition,
    status_update_post,
)
from runbooks.services import RunbookBusy, runbook_request

from . import selectors
from .forms import DeclareForm, ListFilterForm, NoteForm, RolesForm, StatusUpdateForm
from .status_drafts import status_update_draft

PAGE_SIZE = 25
COUNT_LIMIT = 1000  # the list counts up to this many matches, then says "1000+"
# A search counts less far: "100+ matches" says to narrow it as well as "1000+" would,
# and counting a common word's thousand matches cost more than the rest of the page.
SEARCH_COUNT_LIMIT = 100


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def ui_login_required(view: Callable) -> Callable:
    """login_required that sends an htmx request to the login page as a whole page."""
    protected = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and _is_htmx(request):
            login = redirect_to_login(request.headers.get("HX-Current-URL", "/"))
            response = HttpResponse(status=204)
            response["HX-Redirect"] = login["Location"]
            return response
        return protected(request, *args, **kwargs)

    return wrapper


NOT_A_RESPONDER = (
    "Only responders may act on incidents: ask an administrator to add you to the "
    "responders group. You can still view everything."
)


def responder_required(view: Callable) -> Callable:
    """Acting needs the respond permission (the `responders` group); looking does not.
    A GET passes, so a page that also shows a form stays open to every signed-in user."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" and not is_responder(request.user):
            return HttpResponseForbidden(NOT_A_RESPONDER, content_type="text/plain")
        return view(request, *args, **kwargs)

    return wrapper


def responder_post(view: Callable) -> Callable:
    """A POST that acts on an incident: signed in, and a responder."""
    return require_POST(ui_login_required(responder_required(view)))


# --- list and declare -----------------------------------------------------------------


@require_GET
@ui_login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    form = ListFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    filters = selectors.IncidentFilters(
        status=data.get("status") or "open",
        severity=data.get("severity") or "",
        service=(data.get("service") or "").strip(),
        mine=bool(data.get("mine")),
        q=(data.get("q") or "").strip(),
    )
    rows = selectors.incident_list(filters=filters, user=request.user)
    asked = request.GET.get("page", "")
    # Count far enough to page on from the page asked for, not every match.
    limit = SEARCH_COUNT_LIMIT if filters.q else COUNT_LIMIT
    rows.count_limit = max(limit, (int(asked) + 1 if asked.isdigit() else 2) * PAGE_SIZE)
    page = Paginator(rows, PAGE_SIZE).get_page(asked)
    keep = request.GET.copy()
    keep.pop("page", None)
    around = selectors.list_context(request.user)
    request.safe_mode_state = around.safe_mode  # for the banner's context processor
    return render(
        request,
        "incidents/list.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "more": rows.capped,
            "filter_query": keep.urlencode(),
            "service_names": around.service_names,
        },
    )


@ui_login_required
@responder_required
def incident_declare_view(request: HttpRequest) -> HttpResponse:
    form = DeclareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            incident = incident_declare(
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                severity=form.cleaned_data["severity"],
                service=form.cleaned_data["service"],
                actor=request.user,
            )
        except IncidentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Incident #{incident.pk} declared; the runbook is queued.")
            return redirect("incidents:detail", pk=incident.pk)
    return render(
        request,
        "incidents/declare.html",
        {
            "form": form,
            "policies": DeclareForm.policies(),
            "service_names": selectors.catalog_service_names(),
        },
    )


# --- the incident page ----------------------------------------------------------------


def _view_params(request: HttpRequest) -> dict[str, int | None]:
    """Which runbook version (and which to compare with) the page is showing.

    htmx requests carry the page's own URL in HX-Current-URL, so polls and form posts
    keep the version the responder picked without every form having to repeat it.
    """
    query = request.GET
    if _is_htmx(request) and "version" not in query:
        current = parse_qs(urlsplit(request.headers.get("HX-Current-URL", "")).query)
        query = {k: v[-1] for k, v in current.items()}

    def number(name: str) -> int | None:
        value = query.get(name)
        return int(value) if value and re.fullmatch(r"\d{1,9}", str(value)) else None

    return {"version": number("version"), "compare": number("compare")}


def _page_context(
    request: HttpRequest,
    pk: int,
    *,
    boxes: tuple[str, ...] = ("note", "status", "roles"),
    whole_page: bool = True,
    params: dict[str, int | None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The page's data, plus fresh forms for the boxes that will be rendered.

    Only what will be rendered is loaded: users for the roles form, recent updates for
    the status form, alerts for the whole page (the htmx bundle has no alerts part).
    """
    try:
        page = selectors.incident_page(
            pk=pk,
            with_users="roles" in boxes,
            with_status_updates="status" in boxes,
            with_alerts=whole_page,
            with_evidence=whole_page,
            viewer=request.user,
            **(params or _view_params(request)),
        )
    except Incident.DoesNotExist as exc:
        raise Http404("No such incident") from exc
    incident = page.incident
    # Read with the incident: the banner's context processor takes it from here.
    request.safe_mode_state = page.safe_mode
    context: dict[str, Any] = {
        "page": page,
        "incident": incident,
        "can_reask": hasattr(executor_services, "action_request_reask"),
        "oob": [],
    }
    if "note" in boxes and "note_form" not in overrides:
        context["note_form"] = NoteForm()
    if "status" in boxes and "status_form" not in overrides:
        context["status_form"] = StatusUpdateForm(
            initial={
                "audience": "internal",
                "body": status_update_draft(
                    incident=incident, audience="internal", facts=page.draft_facts()
                ),
            }
        )
    if "roles" in boxes and "roles_form" not in overrides:
        context["roles_form"] = RolesForm(
            users=page.users,
            initial={role: getattr(incident, f"{role}_id") for role in ROLE_FIELDS},
        )
    context.update(overrides)
    return context


def incident_detail_response(
    request: HttpRequest,
    pk: int,
    *,
    oob: tuple[str, ...] = (),
    params: dict[str, int | None] | None = None,
    **overrides: Any,
) -> HttpResponse:
    """The whole page, or for htmx the live parts plus the named form boxes, out of band."""
    if _is_htmx(request):
        context = _page_context(
            request, pk, boxes=oob, whole_page=False, params=params, **overrides
        )
        context["oob"] = list(oob)
        return render(request, "incidents/partials/bundle.html", context)
    context = _page_context(request, pk, params=params, **overrides)
    return render(request, "incidents/detail.html", context)


@require_GET
@ui_login_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "incidents/detail.html", _page_context(request, pk))


@require_GET
@ui_login_required
def incident_live(request: HttpRequest, pk: int) -> HttpResponse:
    """What the page polls while work runs: header, runbook, timeline and the poller itself."""
    context = _page_context(request, pk, boxes=(), whole_page=False)
    return render(request, "incidents/partials/bundle.html", context)


def _done(request: HttpRequest, pk: int, *, oob: tuple[str, ...] = ()) -> HttpResponse:
    if _is_htmx(request):
        return incident_detail_response(request, pk, oob=oob)
    return redirect("incidents:detail", pk=pk)


def _incident(pk: int) -> Incident:
    return get_object_or_404(Incident, pk=pk)


def _service_post(
    request: HttpRequest,
    pk: int,
    call: Callable[[], str],
    *,
    errors: type[Exception] = IncidentError,
    prefix: str = "",
) -> HttpResponse:
    """A button's POST: run the service call, flash its message (or the refusal), answer."""
    try:
        message = call()
    except errors as exc:
        messages.error(request, f"{prefix}{exc}")
    else:
        messages.success(request, f"{prefix}{message}")
    return _done(request, pk)


@responder_post
def incident_acknowledge_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident_acknowledge(incident=_incident(pk), actor=request.user)
    messages.success(request, "Acknowledged.")
    return _done(request, pk)


@responder_post
def incident_severity_view(request: HttpRequest, pk: int) -> HttpResponse:
    def call() -> str:
        incident = incident_set_severity(
            incident=_incident(pk), severity=request.POST.get("severity", ""), actor=request.user
        )
        return f"Severity is {incident.severity}."

    return _service_post(request, pk, call)


@responder_post
def incident_transition_view(request: HttpRequest, pk: int) -> HttpResponse:
    def call() -> str:
        incident = incident_transition(
            incident=_incident(pk), to_status=request.POST.get("to_status", ""), actor=request.user
        )
        return f"Status is {incident.get_status_display().lower()}."

    return _service_post(request, pk, call)


@responder_post
def incident_note_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            incident_add_note(
                incident=_incident(pk), text=form.cleaned_data["text"], actor=request.user
            )
        except IncidentError as exc:
            form.add_error("text", str(exc))
    if form.errors:
        return incident_detail_response(request, pk, oob=("note",), note_form=form)
    return _done(request, pk, oob=("note",))


@responder_post
def incident_roles_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    form = RolesForm(request.POST)
    if form.is_valid():
        changed = 0
        for role in ROLE_FIELDS:
            user = form.cleaned_data.get(role)
            if getattr(incident, f"{role}_id") == (user.pk if user else None):
                continue
            try:
                incident = incident_assign_role(
                    incident=incident, role=role, user=user, actor=request.user
                )
                changed += 1
            except IncidentError as exc:
                form.add_error(role, str(exc))
        if changed:
            messages.success(request, "Roles updated.")
    if form.errors:
        return incident_detail_response(request, pk, oob=("roles",), roles_form=form)
    return _done(request, pk, oob=("roles",))


@require_GET
@ui_login_required
def status_update_draft_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The composer's text box, filled with the chosen template's draft."""
    incident = _incident(pk)
    audience = request.GET.get("audience", "internal")
    try:
        body = status_update_draft(incident=incident, audience=audience)
    except IncidentError as exc:
        form = StatusUpdateForm(initial={"audience": "internal"})
        form.add_error("audience", str(exc))
    else:
        form = StatusUpdateForm(initial={"audience": audience, "body": body})
    recent = selectors.incident_status_updates(incident=incident)
    return render(
        request,
        "incidents/partials/status_update_form.html",
        {"incident": incident, "status_form": form, "page": {"status_updates": recent}},
    )


@responder_post
def status_update_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = StatusUpdateForm(request.POST)
    if form.is_valid():
        try:
            update = status_update_post(
                incident=_incident(pk),
                audience=form.cleaned_data["audience"],
                body=form.cleaned_data["body"],
                actor=request.user,
            )
        except IncidentError as exc:
            form.add_error("body", str(exc))
        else:
            note = " It was not sent anywhere." if update.audience == "customer" else ""
            messages.success(
                request, f"{update.get_audience_display()} saved to the timeline.{note}"
            )
    if form.errors:
        return incident_detail_response(request, pk, oob=("status",), status_form=form)
    return _done(request, pk, oob=("status",))


@responder_post
def runbook_regenerate_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        runbook = runbook_request(incident=_incident(pk), actor=request.user)
    except RunbookBusy as exc:  # a second tab or a replayed POST
        messages.info(request, str(exc))
        return _done(request, pk)
    messages.info(request, f"Runbook v{runbook.version} requested.")
    if not _is_htmx(request):
        return redirect("incidents:detail", pk=pk)
    # Show the new version: forget any older version the page had picked.
    response = incident_detail_response(
        request, pk, params={"version": runbook.version, "compare": None}
    )
    response["HX-Replace-Url"] = reverse("incidents:detail", args=[pk])
    return response


def _action(pk: int, action_pk: int) -> ActionRequest:
    return get_object_or_404(ActionRequest, pk=action_pk, incident_id=pk)


@responder_post
def action_run_view(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    action = _action(pk, action_pk)

    def call() -> str:
        ran = action_request_run(action_request=action, actor=request.user)
        return f"{ran.get_status_display().lower()}."

    return _service_post(request, pk, call, errors=ExecutorError, prefix=f"{action.step_id}: ")


@responder_post
def action_reask_view(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    """Ask for approval again once a request expired (when the executor offers it)."""
    reask = getattr(executor_services, "action_request_reask", None)
    if reask is None:
        raise Http404("Asking again is not available.")
    action = _action(pk, action_pk)

    def call() -> str:
        reask(action_request=action, actor=request.user)
        return "approval requested again."

    return _service_post(request, pk, call, errors=ExecutorError, prefix=f"{action.step_id}: ")


@require_POST
@ui_login_required
def safe_mode_view(request: HttpRequest) -> HttpResponse:
    """An approver turns safe mode on or off; leaving it needs a reason."""
    turn = safe_mode_enable if request.POST.get("enabled") == "on" else safe_mode_disable
    try:
        change = turn(actor=request.user, reason=request.POST.get("safe_mode_reason", ""))
    except SafeModeError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Safe mode is {'on' if change.enabled else 'off'}.")
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return redirect(back if safe and back.startswith("/") else "/")
