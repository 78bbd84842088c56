"""The incident list shows urgency: most severe first, and what needs a human in the row."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from executor.choices import ActionStatus, CheckOutcome
from executor.models import CheckRun
from executor.tests.factories import ActionRequestFactory, ExecutionFactory
from incidents.tests.factories import IncidentFactory, StatusUpdateFactory, UserFactory
from runbooks.tests.factories import ready_runbook


@pytest.fixture
def client_in(client, db):
    client.force_login(UserFactory(username="alice"))
    return client


def rows(client) -> list[str]:
    body = client.get(reverse("incidents:list")).content.decode()
    return [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in body.split('<tr class="row')[1:]]


@pytest.mark.django_db
def test_open_incidents_sort_by_severity_then_newest(client_in):
    now = timezone.now()
    IncidentFactory(title="newest sev3", severity="SEV3", detected_at=now)
    IncidentFactory(title="old sev1", severity="SEV1", detected_at=now - timedelta(hours=3))
    IncidentFactory(title="new sev1", severity="SEV1", detected_at=now - timedelta(minutes=1))
    IncidentFactory(title="sev2", severity="SEV2", detected_at=now - timedelta(minutes=2))
    titles = [
        next(t for t in ("old sev1", "new sev1", "sev2", "newest sev3") if t in r)
        for r in rows(client_in)
    ]
    assert titles == ["new sev1", "old sev1", "sev2", "newest sev3"]


@pytest.mark.django_db
def test_the_row_shows_pending_approvals_failed_checks_and_overdue_updates(client_in):
    now = timezone.now()
    waiting = IncidentFactory(title="waits", severity="SEV2", detected_at=now)
    runbook = ready_runbook(incident=waiting)
    ActionRequestFactory(runbook=runbook, status=ActionStatus.AWAITING_APPROVAL)
    execution = ExecutionFactory(runbook=runbook)
    for i, outcome in enumerate([CheckOutcome.OK, CheckOutcome.ERROR, CheckOutcome.WARN]):
        CheckRun.objects.create(execution=execution, check_id=f"c{i}", action="x", outcome=outcome)
    IncidentFactory(title="quiet", severity="SEV1", detected_at=now - timedelta(minutes=20))
    updated = IncidentFactory(
        title="updated", severity="SEV1", detected_at=now - timedelta(hours=1)
    )
    StatusUpdateFactory(incident=updated)

    by_title = {t: r for r in rows(client_in) for t in ("waits", "quiet", "updated") if t in r}
    assert "1 awaiting approval" in by_title["waits"]
    assert "v1 ready" not in by_title["waits"]  # not a green "ready" while an action waits
    assert "2 checks failing" in by_title["waits"]
    assert "update overdue" not in by_title["waits"]  # SEV2: 30 min, detected just now
    assert "update overdue" in by_title["quiet"]  # SEV1: every 15 min, none in 20
    assert "update overdue" not in by_title["updated"]


@pytest.mark.django_db
def test_pages_name_a_favicon_that_exists(client_in):
    from django.contrib.staticfiles import finders

    body = client_in.get(reverse("incidents:list")).content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)"', body)
    assert href and href[1].endswith("img/favicon.svg")
    assert finders.find("img/favicon.svg")
    admin = client_in.get(reverse("admin:login")).content.decode()
    assert 'rel="icon"' in admin


@pytest.mark.django_db
def test_the_declare_form_preselects_no_severity(client_in):
    body = client_in.get(reverse("incidents:declare")).content.decode()
    assert 'name="severity"' in body and "checked" not in body
