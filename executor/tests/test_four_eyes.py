"""Four eyes with a human in the loop: whoever caused a proposal counts as its requester."""

import pytest
from django.core.management import call_command

from executor import services
from executor.choices import ActionStatus, ExecutionStatus
from executor.models import ActionRequest
from incidents.tests.factories import IncidentFactory
from runbooks.models import Runbook
from runbooks.tests.factories import ready_runbook, sample_document

from .approval_helpers import make_approver, step

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]

SELF_APPROVAL = "You asked for this action; someone else must approve it"


def _proposed(*, declarer=None, runbook_requester=None) -> ActionRequest:
    """An unsafe notify proposed by the pipeline for an incident `declarer` declared, from a
    runbook version `runbook_requester` asked for (Regenerate)."""
    incident = IncidentFactory(created_by=declarer)
    runbook = ready_runbook(
        sample_document(checks=[], recommended_actions=[step("tell", "alert.notify", message="x")]),
        incident=incident,
    )
    Runbook.objects.filter(pk=runbook.pk).update(requested_by=runbook_requester)
    execution = services.execution_run(runbook_id=runbook.pk)
    assert execution.status == ExecutionStatus.DONE, execution.error
    request = runbook.action_requests.get(step_id="tell")
    assert request.status == ActionStatus.AWAITING_APPROVAL
    return request


def _refused(request: ActionRequest, user) -> None:
    with pytest.raises(services.ExecutorError, match=SELF_APPROVAL):
        services.action_request_approve(action_request=request, approver=user)
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert not request.approvals.exists()


def test_the_declarer_cannot_approve_what_their_incident_proposed():
    declarer = make_approver("declarer")
    request = _proposed(declarer=declarer, runbook_requester=declarer)
    assert request.caused_by == declarer
    _refused(request, declarer)


def test_the_declarer_counts_when_the_version_was_asked_for_by_nobody():
    declarer = make_approver("declarer")
    request = _proposed(declarer=declarer)
    _refused(request, declarer)


def test_whoever_clicked_regenerate_cannot_approve_its_actions():
    declarer, regenerator = make_approver("declarer"), make_approver("regenerator")
    request = _proposed(declarer=declarer, runbook_requester=regenerator)
    assert request.caused_by == regenerator
    _refused(request, regenerator)
    # The declarer did not ask for this version: their approval counts.
    approved = services.action_request_approve(action_request=request, approver=declarer)
    assert approved.status == ActionStatus.SUCCEEDED


def test_whoever_clicked_run_on_an_action_that_needs_approval_cannot_approve_it():
    request = _proposed()
    # A row left proposed although the rule wants an approval: the click asks for it.
    ActionRequest.objects.filter(pk=request.pk).update(
        status=ActionStatus.PROPOSED, requested_at=None, expires_at=None
    )
    clicker = make_approver("clicker")
    asked = services.action_request_run(action_request=request, actor=clicker)
    assert asked.status == ActionStatus.AWAITING_APPROVAL
    assert asked.requested_by == clicker and asked.expires_at is not None
    _refused(asked, clicker)


def test_a_second_distinct_approver_succeeds():
    declarer, other = make_approver("declarer"), make_approver("other")
    request = _proposed(declarer=declarer, runbook_requester=declarer)
    approved = services.action_request_approve(action_request=request, approver=other)
    assert approved.status == ActionStatus.SUCCEEDED
    assert list(approved.approvals.values_list("approver__username", flat=True)) == ["other"]


def test_the_approvals_command_applies_the_same_rule():
    declarer = make_approver("declarer")
    request = _proposed(declarer=declarer, runbook_requester=declarer)
    with pytest.raises(Exception, match=SELF_APPROVAL):
        call_command("approvals", "approve", str(request.pk), "--as", "declarer")
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
