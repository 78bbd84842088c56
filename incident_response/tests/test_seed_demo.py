"""seed_demo tells the whole story on any database, and a second run changes nothing.

The browser test (web/tests/test_demo_browser.py) approves the waiting action on the
embedded default; this one checks the story's pieces on both configurations.
"""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from executor.choices import ActionStatus, Safety
from executor.models import ActionRequest
from executor.policy import is_approver, is_responder, may_approve
from incidents.choices import IncidentStatus
from incidents.models import Incident
from learning.permissions import may_edit_postmortem, may_publish_postmortem

pytestmark = pytest.mark.django_db(transaction=True)


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_demo_has_a_destructive_action_waiting_for_the_second_user(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.ANTHROPIC_API_KEY = ""
    settings.EXECUTOR_DEMO_TARGETS = True
    first = _seed()
    assert "Demo data ready." in first

    waiting = ActionRequest.objects.filter(
        status=ActionStatus.AWAITING_APPROVAL, safety=Safety.DESTRUCTIVE
    )
    assert waiting.exists(), list(ActionRequest.objects.values_list("action", "status"))
    request = waiting.first()
    # The app's own database: VACUUM on SQLite, cancelling stuck queries on PostgreSQL.
    assert request.target == "app-db"
    assert request.action in ("database.vacuum", "database.kill_query")
    assert request.approval_reason.startswith("destructive action")

    User = get_user_model()
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert is_responder(alice) and not is_approver(alice)
    assert is_approver(bob) and may_approve(bob, request) and not may_approve(alice, request)
    assert may_edit_postmortem(alice) and may_publish_postmortem(bob)
    assert not may_publish_postmortem(alice)

    assert Incident.objects.filter(alerts__isnull=False).exists()  # opened by an alert
    resolved = Incident.objects.get(status=IncidentStatus.RESOLVED)
    assert resolved.postmortem is not None

    incidents, requests = Incident.objects.count(), ActionRequest.objects.count()
    second = _seed()
    assert second.count("exists:") == 5 and "opened by an alert" not in second
    assert (Incident.objects.count(), ActionRequest.objects.count()) == (incidents, requests)
