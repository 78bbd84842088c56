"""Our own state-changing actions are recorded as changes of the incident's service."""

import pytest

from executor.changes import record_action_change
from incidents.choices import ChangeKind, ChangeStatus
from incidents.models import ChangeEvent

from .factories import ActionRequestFactory

pytestmark = pytest.mark.django_db


def test_rollback_scale_and_restart_are_changes_and_a_rerecord_updates():
    rollback = ActionRequestFactory(
        action="deploy.rollback", params={"image": "registry.fly.io/checkout:v2.13"}
    )
    rollback.incident.service = "checkout"
    rollback.incident.save()
    record_action_change(rollback, succeeded=True)
    record_action_change(rollback, succeeded=False)
    change = ChangeEvent.objects.get()
    assert (change.service, change.kind, change.version, change.status) == (
        "checkout",
        ChangeKind.ROLLBACK,
        "registry.fly.io/checkout:v2.13",
        ChangeStatus.FAILED,
    )
    assert change.origin == "executor" and change.external_id == f"action:{rollback.pk}"
    scale = ActionRequestFactory(action="service.scale", params={"count": 4}, target="web")
    assert record_action_change(scale, succeeded=True).version == "count=4"


def test_read_only_and_notify_actions_are_not_changes():
    assert record_action_change(ActionRequestFactory(action="alert.notify"), succeeded=True) is None
    assert not ChangeEvent.objects.exists()
