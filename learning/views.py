"""The learning pages. Each parses input and calls a service or a selector."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from incidents.models import Incident

from . import selectors, services
from .choices import PostmortemStatus
from .export import FORMATS, export_timeline
from .forms import FollowUpForm, HandoffForm, PostmortemForm
from .models import SECTIONS, FollowUp, Handoff
from .pages import metrics_page_context
from .permissions import (
    NOT_AN_EDITOR,
    may_edit_postmortem,
    may_move_postmortem,
    may_publish_postmortem,
    move_refusal,
)
from .rendering import render_markdown
from .reports import handoff_report, weekly_report


def _incident(pk: int) -> Incident:
    return get_object_or_404(Incident, pk=pk)


def _refused(message: str) -> HttpResponse:
    """A refused change: 403 with what to ask for, before anything is read or written."""
    return HttpResponseForbidden(message, content_type="text/plain; charset=utf-8")


@login_required
def postmortem_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    can_edit = may_edit_postmortem(request.user)
    if request.method == "POST" and not can_edit:
        return _refused(NOT_AN_EDITOR)
    postmortem = selectors.postmortem_for_page(pk)
    if request.method == "POST" and postmortem is not None:
        form = PostmortemForm(request.POST)
        if form.is_valid():
            try:
                services.postmortem_update(
                    postmortem=postmortem, actor=request.user, **form.cleaned_data
                )
            except services.LearningError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "Postmortem saved.")
            return redirect("learning:postmortem", pk=pk)
    sections = []
    issues: list[str] = []
    form = None
    if postmortem is not None:
        form = PostmortemForm(initial={name: getattr(postmortem, name) for name, _ in SECTIONS})
        sections = [
            (name, label, render_markdown(getattr(postmortem, name))) for name, label in SECTIONS
        ]
        issues = services.postmortem_blameless_issues(postmortem)
    return render(
        request,
        "learning/postmortem.html",
        {
            "incident": incident,
            "postmortem": postmortem,
            "form": form,
            "sections": sections,
            "issues": issues,
            "can_edit": can_edit,
            "can_publish": may_publish_postmortem(request.user),
            "editing": request.GET.get("edit") == "1"
            and can_edit
            and postmortem is not None
            and postmortem.status != PostmortemStatus.PUBLISHED,
            "follow_ups": selectors.follow_ups_of_incident(pk),
            "follow_up_form": FollowUpForm(initial={"owner": incident.commander_id}),
            "lessons": selectors.similar_to_incident(incident),
            "today": timezone.localdate(),
        },
    )


@login_required
@require_POST
def postmortem_draft_view(request: HttpRequest, pk: int) -> HttpResponse:
    _incident(pk)
    if not may_edit_postmortem(request.user):
        return _refused(NOT_AN_EDITOR)
    services.postmortem_draft(incident_id=pk, actor=request.user)
    return redirect("learning:postmortem", pk=pk)


@login_required
@require_POST
def postmortem_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    to_status = request.POST.get("to", "")
    if not may_move_postmortem(request.user, to_status):
        return _refused(move_refusal(to_status))
    postmortem = selectors.postmortem_for_page(pk)
    if postmortem is None:
        raise Http404("no postmortem")
    try:
        services.postmortem_transition(
            postmortem=postmortem, to_status=to_status, actor=request.user
        )
    except services.LearningError as exc:
        messages.error(request, str(exc))
    return redirect("learning:postmortem", pk=pk)


@login_required
@require_POST
def follow_up_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident(pk)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Follow-up not added: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in form.errors.items()
        ))  # fmt: skip
        return redirect("learning:postmortem", pk=pk)
    try:
        services.follow_up_create(
            incident=incident,
            actor=request.user,
            postmortem=selectors.postmortem_for_page(pk),
            **form.cleaned_data,
        )
    except services.LearningError as exc:
        messages.error(request, str(exc))
    return redirect("learning:postmortem", pk=pk)


@login_required
@require_POST
def follow_up_status_view(request: HttpRequest, follow_up_pk: int) -> HttpResponse:
    item = get_object_or_404(FollowUp, pk=follow_up_pk)
    try:
        services.follow_up_set_status(
            follow_up=item, to_status=request.POST.get("to", ""), actor=request.user
        )
    except services.LearningError as exc:
        messages.error(request, str(exc))
    back = request.POST.get("back")
    if back == "mine":
        return redirect("learning:my_follow_ups")
    return redirect("learning:postmortem", pk=item.incident_id)


@login_required
def my_follow_ups_view(request: HttpRequest) -> HttpResponse:
    items = list(selectors.my_follow_ups(request.user))
    today = timezone.localdate()
    return render(
        request,
        "learning/my_follow_ups.html",
        {"items": items, "today": today},
    )


@login_required
def timeline_export_view(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404("unknown format")
    incident = _incident(pk)
    response = HttpResponse(export_timeline(incident, fmt), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="incident-{pk}-timeline.{fmt}"'
    return response


@login_required
def metrics_view(request: HttpRequest) -> HttpResponse:
    return render(request, "learning/metrics.html", metrics_page_context(request.GET))


@login_required
def weekly_report_view(request: HttpRequest) -> HttpResponse:
    return render(request, "learning/weekly_report.html", {"report": weekly_report()})


@login_required
def handoff_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = HandoffForm(request.POST)
        if form.is_valid():
            try:
                services.handoff_record(
                    from_user=request.user,
                    to_user=form.cleaned_data["to_user"],
                    known_risks=form.cleaned_data["known_risks"],
                    snapshot=handoff_report().as_json(),
                )
            except services.LearningError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Handed over to {form.cleaned_data['to_user']}.")
                return redirect("learning:handoff")
    else:
        form = HandoffForm()
    return render(
        request,
        "learning/handoff.html",
        {
            "report": handoff_report(),
            "form": form,
            "recent": Handoff.objects.select_related("from_user", "to_user")[:5],
        },
    )
