"""`manage.py approvals`: the queue from a shell, with the services' rules."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from executor.choices import ActionStatus, Decision
from executor.models import ActionRequest, Approval
from incidents.tests.factories import UserFactory

from .approval_helpers import approvers_group, make_approver, notify_request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("approvals", *args, stdout=out)
    return out.getvalue()


def test_list_shows_pending_requests_with_their_plan():
    waiting = notify_request("page_dba", severity="SEV1", message="paging the DBA")
    done = notify_request("done")
    ActionRequest.objects.filter(pk=done.pk).update(status=ActionStatus.REJECTED)
    out = _run("list")
    assert f"#{waiting.pk} [SEV1]" in out
    assert "page_dba: alert.notify → timeline" in out
    assert "| Would record on the incident timeline: paging the DBA" in out
    assert "why: the runbook marked this action unsafe" in out
    assert "approvals=0/1" in out
    # Each request's line starts with its id (an incident id may have the same number).
    assert not any(line.startswith(f"#{done.pk} ") for line in out.splitlines())
    assert any(line.startswith(f"#{done.pk} ") for line in _run("list", "--all").splitlines())


def test_list_says_so_when_nothing_waits():
    assert "No action request waits for a decision." in _run("list")


def test_approve_and_reject_from_the_shell():
    approve_me = notify_request("approve_me")
    reject_me = notify_request("reject_me")
    make_approver("carol")
    out = _run("approve", str(approve_me.pk), "--as", "carol", "--reason", "looks right")
    assert "approve_me (alert.notify): succeeded" in out
    assert Approval.objects.get(action_request=approve_me).reason == "looks right"

    with pytest.raises(CommandError, match="--reason"):
        _run("reject", str(reject_me.pk), "--as", "carol")
    with pytest.raises(CommandError, match="a reason is required"):
        _run("reject", str(reject_me.pk), "--as", "carol", "--reason", " ")
    _run("reject", str(reject_me.pk), "--as", "carol", "--reason", "wrong incident")
    reject_me.refresh_from_db()
    assert reject_me.status == ActionStatus.REJECTED
    assert Approval.objects.get(action_request=reject_me).decision == Decision.REJECT


def test_the_same_rules_apply_in_the_shell():
    request = notify_request()
    asker = make_approver("asker")
    ActionRequest.objects.filter(pk=request.pk).update(requested_by=asker)
    UserFactory(username="nobody")
    with pytest.raises(CommandError, match="someone else must approve it"):
        _run("approve", str(request.pk), "--as", "asker")
    with pytest.raises(CommandError, match="permission to approve"):
        _run("approve", str(request.pk), "--as", "nobody")
    with pytest.raises(CommandError, match="No active user 'ghost'"):
        _run("approve", str(request.pk), "--as", "ghost")
    with pytest.raises(CommandError, match="No action request #999999"):
        _run("approve", "999999", "--as", "asker")
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL


def test_an_expired_request_is_asked_for_again_from_the_shell():
    request = notify_request()
    ActionRequest.objects.filter(pk=request.pk).update(status=ActionStatus.EXPIRED)
    make_approver("carol")
    make_approver("dave")
    with pytest.raises(CommandError, match="expired"):
        _run("approve", str(request.pk), "--as", "carol")
    assert "awaiting approval" in _run("reask", str(request.pk), "--as", "carol")
    with pytest.raises(CommandError, match="someone else must approve"):
        _run("approve", str(request.pk), "--as", "carol")
    assert "succeeded" in _run("approve", str(request.pk), "--as", "dave")


def test_a_member_of_approvers_who_is_not_staff_is_refused_as_in_the_admin():
    request = notify_request()
    member = UserFactory(username="member", is_staff=False)
    member.groups.add(approvers_group())
    with pytest.raises(CommandError, match="permission to approve"):
        _run("approve", str(request.pk), "--as", "member")
    with pytest.raises(CommandError, match="permission to reject"):
        _run("reject", str(request.pk), "--as", "member", "--reason", "no")
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert not request.approvals.exists()
