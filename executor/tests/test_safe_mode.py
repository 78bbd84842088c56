"""Safe mode: who turns it, what it stops, where it shows, and when it turns itself on."""

import pytest
from django.urls import reverse

from executor import services
from executor.choices import ActionStatus
from executor.models import SafeModeChange
from executor.policy import safe_mode_refusal
from executor.safe_mode import (
    SafeModeError,
    safe_mode_auto_check,
    safe_mode_disable,
    safe_mode_enable,
    safe_mode_state,
)
from executor.tests.approval_helpers import make_approver, notify_request, pending_requests, step
from incidents.choices import IncidentStatus, TimelineKind
from incidents.tests.factories import IncidentFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_slack_notifications")]


@pytest.fixture
def alice():
    return make_approver("alice")


def test_an_approver_turns_it_on_with_who_and_why(alice):
    change = safe_mode_enable(actor=alice, reason="database is melting")
    state = safe_mode_state()
    assert state == change and state.actor == alice
    assert "by alice: database is melting" in safe_mode_refusal("reversible")
    assert safe_mode_refusal("read_only") == ""


def test_a_non_approver_can_neither_turn_it_on_nor_leave_it(alice):
    bob = UserFactory(username="bob")
    with pytest.raises(SafeModeError, match="Only an approver"):
        safe_mode_enable(actor=bob, reason="why not")
    safe_mode_enable(actor=alice, reason="storm")
    with pytest.raises(SafeModeError, match="Only an approver"):
        safe_mode_disable(actor=bob, reason="calm now")
    assert safe_mode_state() is not None


def test_leaving_it_needs_a_reason(alice):
    safe_mode_enable(actor=alice, reason="storm")
    with pytest.raises(SafeModeError, match="reason is required"):
        safe_mode_disable(actor=alice, reason="  ")
    assert safe_mode_state() is not None
    safe_mode_disable(actor=alice, reason="storm passed")
    assert safe_mode_state() is None
    assert list(SafeModeChange.objects.values_list("enabled", flat=True)) == [False, True]


def test_each_turn_is_on_every_open_incident_timeline(alice):
    open_one, other = IncidentFactory(), IncidentFactory()
    resolved = IncidentFactory(status=IncidentStatus.RESOLVED)
    safe_mode_enable(actor=alice, reason="storm")
    safe_mode_disable(actor=alice, reason="calm")
    for incident in (open_one, other):
        notes = list(
            incident.timeline.filter(kind=TimelineKind.NOTE, payload__has_key="safe_mode")
            .order_by("id")
            .values_list("message", flat=True)
        )
        assert notes == [
            "Safe mode turned on by alice: storm",
            "Safe mode turned off by alice: calm",
        ]
    assert not resolved.timeline.filter(payload__has_key="safe_mode").exists()


def test_an_approved_run_that_starts_after_safe_mode_turned_on_is_refused(alice, monkeypatch):
    request = notify_request()
    monkeypatch.setattr(services.approvals, "queue_action_run", lambda pk: None)  # not yet run
    services.action_request_approve(action_request=request, approver=make_approver("carol"))
    request.refresh_from_db()
    assert request.status == ActionStatus.RUNNING
    safe_mode_enable(actor=alice, reason="hands off")
    done = services.action_request_execute(action_request_id=request.pk)
    assert done.status == ActionStatus.FAILED
    assert "refused: safe mode is on since" in done.error
    assert "(by alice: hands off)" in done.error
    last = request.incident.timeline.filter(kind=TimelineKind.ACTION_STATUS).order_by("-id")[0]
    assert "safe mode is on since" in last.message


def test_generation_goes_on_but_offers_no_action_to_run(alice):
    safe_mode_enable(actor=alice, reason="storm")
    requests = pending_requests(step("tell", "alert.notify", safe=True, message="hi"))
    tell = requests["tell"]
    assert tell.status == ActionStatus.BLOCKED
    assert tell.error.startswith("not offered to run: safe mode is on since")


def test_it_turns_itself_on_at_the_sev1_limit(settings, django_capture_on_commit_callbacks):
    settings.SAFE_MODE_AUTO_SEV1_OPEN = 2
    with django_capture_on_commit_callbacks(execute=True):
        IncidentFactory(severity="SEV1")
    assert safe_mode_state() is None
    with django_capture_on_commit_callbacks(execute=True):
        IncidentFactory(severity="SEV1")
    state = safe_mode_state()
    assert state is not None and state.automatic and state.actor is None
    assert "2 SEV1 incidents open at once" in state.reason
    assert safe_mode_auto_check() is None  # already on: no second row
    assert SafeModeChange.objects.count() == 1


def test_the_auto_trigger_is_off_at_zero(settings):
    settings.SAFE_MODE_AUTO_SEV1_OPEN = 0
    IncidentFactory(severity="SEV1")
    assert safe_mode_auto_check() is None


def test_pages_and_admin_show_the_banner(client, alice):
    client.force_login(alice)
    assert "Turn safe mode on" in client.get(reverse("incidents:list")).content.decode()
    response = client.post(
        reverse("incidents:safe_mode"), {"enabled": "on", "safe_mode_reason": "storm", "next": "/"}
    )
    assert response.status_code == 302 and safe_mode_state() is not None
    for url in (reverse("incidents:list"), reverse("admin:index")):
        page = client.get(url).content.decode()
        assert 'id="safe-mode-banner"' in page and "(by alice: storm)" in page


def test_the_page_refuses_leaving_without_a_reason_or_for_non_approvers(client, alice):
    safe_mode_enable(actor=alice, reason="storm")
    bob = UserFactory(username="bob")
    client.force_login(bob)
    client.post(reverse("incidents:safe_mode"), {"enabled": "off", "safe_mode_reason": "calm"})
    assert safe_mode_state() is not None
    client.force_login(alice)
    client.post(reverse("incidents:safe_mode"), {"enabled": "off", "safe_mode_reason": ""})
    assert safe_mode_state() is not None
    client.post(reverse("incidents:safe_mode"), {"enabled": "off", "safe_mode_reason": "calm"})
    assert safe_mode_state() is None


def test_the_admin_turns_it_on_and_off(client, alice):
    client.force_login(alice)
    url = reverse("admin:executor_safemodechange_add")
    client.post(url, {"enabled": "on", "reason": "storm"})
    assert safe_mode_state() is not None
    client.post(url, {"reason": "calm"})  # unchecked: leave
    assert safe_mode_state() is None


def test_the_periodic_check_turns_it_on_at_the_alert_rate(settings):
    from executor.tasks import safe_mode_check_task
    from incidents.tests.factories import AlertFactory

    settings.SAFE_MODE_AUTO_ALERTS_PER_MINUTE = 3
    AlertFactory.create_batch(2)
    assert safe_mode_check_task() is False
    assert safe_mode_state() is None
    AlertFactory()
    assert safe_mode_check_task() is True
    state = safe_mode_state()
    assert state.enabled and state.automatic
    assert "3 alerts in the last minute" in state.reason
