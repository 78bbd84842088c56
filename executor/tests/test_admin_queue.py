"""The approval queue in Django admin, driven with the test client."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from executor.choices import ActionStatus, Decision
from executor.models import ActionRequest, Approval
from incidents.tests.factories import UserFactory

from .approval_helpers import make_approver, notify_request, pending_requests, step

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]

QUEUE = reverse("admin:executor_actionrequest_changelist")


def _viewer(username: str = "viewer"):
    """Staff who may look at the queue but not decide."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_actionrequest"))
    return user


def _detail(request: ActionRequest) -> str:
    return reverse("admin:executor_actionrequest_change", args=[request.pk])


def _decide(request: ActionRequest) -> str:
    return reverse("admin:executor_actionrequest_decide", args=[request.pk])


def _row_order(html: str, ids: list[int]) -> list[int]:
    found = [int(m) for m in re.findall(r'name="_selected_action" value="(\d+)"', html)]
    return [i for i in found if i in ids]


def test_the_queue_shows_what_waits_for_a_decision(client):
    waiting = notify_request("page_dba", severity="SEV2", message="DBA: look at <orders>")
    done = notify_request("done")
    ActionRequest.objects.filter(pk=done.pk).update(status=ActionStatus.REJECTED)
    client.force_login(make_approver("approver", staff=True))

    html = client.get(QUEUE).content.decode()
    assert "page_dba" in html and ">done<" not in html  # pending only, by default
    assert f'value="{waiting.pk}"' in html and f'value="{done.pk}"' not in html
    assert '<span class="sev-badge"' in html and "SEV2" in html
    assert "alert.notify</code> → <code>timeline" in html
    # The dry-run plan, readable and escaped.
    assert (
        '<pre class="queue-pre queue-plan">Would record on the incident timeline: DBA: look at &lt;orders&gt;</pre>'
        in html
    )
    assert "the runbook marked this action unsafe" in html  # why approval is needed
    assert "runbook v1" in html  # who asked: the pipeline
    assert '<td class="field-waited">0\xa0minutes</td>' in html  # waited for
    assert '<td class="field-expires_in">59\xa0minutes</td>' in html  # SEV2: one hour to decide
    everything = client.get(QUEUE, {"status": "all"}).content.decode()
    assert "page_dba" in everything and "done" in everything


def test_most_severe_first_then_oldest(client):
    sev3_old = notify_request("sev3_old", severity="SEV3")
    sev1 = notify_request("sev1", severity="SEV1")
    sev3_new = notify_request("sev3_new", severity="SEV3")
    now = timezone.now()
    ActionRequest.objects.filter(pk=sev3_old.pk).update(requested_at=now - timedelta(hours=2))
    ActionRequest.objects.filter(pk=sev3_new.pk).update(requested_at=now - timedelta(minutes=5))
    client.force_login(make_approver("approver", staff=True))
    html = client.get(QUEUE).content.decode()
    ids = [sev1.pk, sev3_old.pk, sev3_new.pk]
    assert _row_order(html, ids) == ids


def test_filters_and_search(client):
    a = pending_requests(
        step("tell_sev1", "alert.notify", message="x"), severity="SEV1", title="Payments down"
    )["tell_sev1"]
    notify_request("tell_sev3", severity="SEV3")
    client.force_login(make_approver("approver", staff=True))
    by_sev = client.get(QUEUE, {"incident__severity__exact": "SEV1"}).content.decode()
    assert "tell_sev1" in by_sev and "tell_sev3" not in by_sev
    by_search = client.get(QUEUE, {"q": "Payments"}).content.decode()
    assert "tell_sev1" in by_search and "tell_sev3" not in by_search
    by_action = client.get(QUEUE, {"action": "alert.notify"}).content.decode()
    assert "tell_sev1" in by_action and "tell_sev3" in by_action
    by_service = client.get(QUEUE, {"incident__service": a.incident.service}).content.decode()
    assert "tell_sev1" in by_service


def test_the_admin_index_counts_pending_requests(client):
    notify_request("a", severity="SEV1")
    notify_request("b", severity="SEV3")
    notify_request("c", severity="SEV3")
    client.force_login(make_approver("approver", staff=True))
    html = client.get(reverse("admin:index")).content.decode()
    assert "3 action requests wait for a decision" in html
    assert "1 SEV1, 2 SEV3" in html


def test_a_user_without_the_permission_sees_no_approve_action(client):
    request = notify_request()
    client.force_login(_viewer())
    queue = client.get(QUEUE)
    assert queue.status_code == 200
    html = queue.content.decode()
    assert "tell" in html
    assert "approve_selected" not in html and "reject_selected" not in html
    detail = client.get(_detail(request)).content.decode()
    assert "Would record on the incident timeline" in detail
    assert 'id="approve-button"' not in detail and 'id="reject-button"' not in detail
    # Posting anyway is refused by the service, and nothing changes.
    response = client.post(_decide(request), {"decision": "approve"}, follow=True)
    assert "You do not have permission to approve actions." in response.content.decode()
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL


def test_approve_and_reject_with_the_buttons_of_the_detail_page(client):
    approve_me = notify_request("approve_me")
    reject_me = notify_request("reject_me")
    client.force_login(make_approver("approver", staff=True))
    detail = client.get(_detail(approve_me)).content.decode()
    assert 'id="approve-button"' in detail and 'id="reject-button"' in detail

    page = client.post(_decide(approve_me), {"decision": "approve"}, follow=True).content.decode()
    assert "Approved. The request is now succeeded." in page
    approve_me.refresh_from_db()
    assert approve_me.status == ActionStatus.SUCCEEDED
    assert "Recorded on the incident timeline" in page  # the result shows on the request

    page = client.post(_decide(reject_me), {"decision": "reject", "reason": ""}, follow=True)
    assert "a reason is required" in page.content.decode()
    reject_me.refresh_from_db()
    assert reject_me.status == ActionStatus.AWAITING_APPROVAL
    client.post(_decide(reject_me), {"decision": "reject", "reason": "not this one"})
    reject_me.refresh_from_db()
    assert reject_me.status == ActionStatus.REJECTED
    assert Approval.objects.get(action_request=reject_me).reason == "not this one"


def test_self_approval_in_the_admin_is_refused_with_a_clear_message(client):
    request = notify_request()
    me = make_approver("me", staff=True)
    ActionRequest.objects.filter(pk=request.pk).update(requested_by=me)
    client.force_login(me)
    page = client.post(_decide(request), {"decision": "approve"}, follow=True).content.decode()
    assert "You asked for this action; someone else must approve it." in page
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL


def test_expired_request_offers_ask_again_not_approve(client):
    request = notify_request()
    ActionRequest.objects.filter(pk=request.pk).update(
        status=ActionStatus.EXPIRED, expires_at=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(make_approver("approver", staff=True))
    detail = client.get(_detail(request)).content.decode()
    assert 'id="approve-button"' not in detail and 'id="reask-button"' in detail
    page = client.post(_decide(request), {"decision": "approve"}, follow=True).content.decode()
    assert "This request has expired; ask for approval again." in page
    client.post(_decide(request), {"decision": "reask"})
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert request.expires_at > timezone.now()


def test_admin_actions_approve_and_reject_with_a_reason(client):
    one = notify_request("one")
    two = notify_request("two")
    three = notify_request("three")
    client.force_login(make_approver("approver", staff=True))

    client.post(QUEUE, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [one.pk], "index": 0})
    one.refresh_from_db()
    assert one.status == ActionStatus.SUCCEEDED

    # Reject asks for a reason on an intermediate page first.
    page = client.post(
        QUEUE, {"action": "reject_selected", ACTION_CHECKBOX_NAME: [two.pk, three.pk], "index": 0}
    )
    html = page.content.decode()
    assert page.status_code == 200 and 'name="reason"' in html and "two" in html and "three" in html
    two.refresh_from_db()
    assert two.status == ActionStatus.AWAITING_APPROVAL
    # Without a reason: asked again, nothing rejected.
    page = client.post(
        QUEUE,
        {
            "action": "reject_selected",
            ACTION_CHECKBOX_NAME: [two.pk, three.pk],
            "confirm": "yes",
            "reason": " ",
        },
    )
    assert "a reason is required" in page.content.decode()
    assert (
        ActionRequest.objects.filter(
            pk__in=[two.pk, three.pk], status=ActionStatus.REJECTED
        ).count()
        == 0
    )
    client.post(
        QUEUE,
        {
            "action": "reject_selected",
            ACTION_CHECKBOX_NAME: [two.pk, three.pk],
            "confirm": "yes",
            "reason": "stale plan",
        },
    )
    rejected = Approval.objects.filter(action_request__in=[two, three], decision=Decision.REJECT)
    assert sorted(rejected.values_list("reason", flat=True)) == ["stale plan", "stale plan"]


def test_approval_rows_are_read_only_in_admin(client, admin_user):
    request = notify_request()
    client.force_login(make_approver("approver", staff=True))
    client.post(_decide(request), {"decision": "reject", "reason": "no"})
    approval = Approval.objects.get()
    client.force_login(admin_user)  # even a superuser
    change_url = reverse("admin:executor_approval_change", args=[approval.pk])
    page = client.get(change_url).content.decode()
    assert 'name="_save"' not in page and 'name="reason"' not in page
    client.post(change_url, {"reason": "edited", "decision": "approve"})
    delete = client.post(
        reverse("admin:executor_approval_delete", args=[approval.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    listing = client.get(reverse("admin:executor_approval_changelist")).content.decode()
    assert "delete_selected" not in listing
    assert reverse("admin:executor_approval_add") not in listing
    approval.refresh_from_db()
    assert (approval.reason, approval.decision) == ("no", Decision.REJECT)
    # The request's own page shows its approvals without edit or delete controls.
    detail = client.get(_detail(request)).content.decode()
    assert "approvals-0-DELETE" not in detail and 'name="_save"' not in detail
