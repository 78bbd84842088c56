"""Alert-opened incidents are diagnosed at once; alerts joining later refresh the runbook
at most once per debounce window, and never while it is being generated."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from incident_response import pipeline as stages
from incident_response.celery import app
from incidents.choices import IncidentStatus, TimelineKind
from incidents.ingest.dispatch import DISPATCHER
from incidents.ingest.outbox import outbox_process
from incidents.models import AlertGroup, Incident, IngestOutbox
from incidents.services import incident_transition
from runbooks.choices import RunbookStatus
from runbooks.models import Runbook
from testing.waiting import wait_until, worker_idle

from .ingest_helpers import eager, make_source, post, secrets  # noqa: F401

WINDOW = 30


def alert(i: int, service: str = "search") -> dict:
    return {"title": f"Search latency {i}", "service": service, "dedup_key": f"lat-{i}"}


def versions(incident: Incident) -> list[tuple[int, str]]:
    return list(incident.runbooks.order_by("version").values_list("version", "status"))


def window_passed(incident: Incident, *, by: timedelta = timedelta(hours=1)) -> None:
    """Move the group's clock back, as if the last request and the owed refresh were older
    (not its last alert: the next one must still join it)."""
    group = AlertGroup.objects.get(incident=incident)
    AlertGroup.objects.filter(pk=group.pk).update(
        runbook_requested_at=group.runbook_requested_at - by,
        refresh_wanted_at=group.refresh_wanted_at and group.refresh_wanted_at - by,
    )


@pytest.fixture
def window(settings) -> int:
    settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS = WINDOW
    settings.INGEST_GENERATION_RETRY_SECONDS = 15
    return WINDOW


# --- eager (the embedded default): every delivery checks, no timer ------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets", "eager", "window")
def test_joining_alerts_refresh_once_per_window_not_once_per_alert(client):
    make_source("generic")
    post(client, "generic", alert(0))
    incident = Incident.objects.get()
    assert versions(incident) == [(1, RunbookStatus.READY)]  # diagnosed at once

    for i in range(1, 6):  # five more alerts join within the window
        assert post(client, "generic", alert(i)).status_code == 202
    assert Incident.objects.count() == 1 and incident.alerts.count() == 6
    assert versions(incident) == [(1, RunbookStatus.READY)]
    group = AlertGroup.objects.get(incident=incident)
    assert group.refresh_wanted_at is not None

    window_passed(incident)
    post(client, "generic", alert(6))  # the first delivery after the window refreshes
    assert versions(incident) == [(1, RunbookStatus.READY), (2, RunbookStatus.READY)]
    assert AlertGroup.objects.get(incident=incident).refresh_wanted_at is None
    for i in range(7, 10):  # a new window has begun: these are owed, not refreshed yet
        post(client, "generic", alert(i))
    assert len(versions(incident)) == 2
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert kinds.count(TimelineKind.RUNBOOK_QUEUED) == 2
    assert kinds.count(TimelineKind.ALERT_RECEIVED) == 10  # one per delivery


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets", "eager", "window")
def test_no_refresh_while_the_runbook_is_generating(client):
    make_source("generic")
    post(client, "generic", alert(0))
    incident = Incident.objects.get()
    Runbook.objects.filter(incident=incident).update(status=RunbookStatus.GENERATING)
    post(client, "generic", alert(1))
    window_passed(incident)
    post(client, "generic", alert(2))
    assert len(versions(incident)) == 1
    assert stages.runbook_debounce(incident_id=incident.pk) == 15  # asks again later
    assert AlertGroup.objects.get(incident=incident).refresh_wanted_at is not None

    Runbook.objects.filter(incident=incident).update(status=RunbookStatus.READY)
    assert stages.runbook_debounce(incident_id=incident.pk) is None
    assert [v for v, _ in versions(incident)] == [1, 2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets", "eager", "window")
def test_a_resolved_incident_owes_no_refresh(client):
    make_source("generic")
    post(client, "generic", alert(0))
    post(client, "generic", alert(1))
    incident = Incident.objects.get()
    incident_transition(incident=incident, to_status=IncidentStatus.RESOLVED)
    window_passed(incident)
    assert stages.pipeline_sweep().refreshes_checked == 0
    assert AlertGroup.objects.get(incident=incident).refresh_wanted_at is None
    assert stages.runbook_debounce(incident_id=incident.pk) is None
    assert incident.runbooks.count() == 1


# --- with a worker: one message per window, the sweep for lost ones ----------------


@pytest.fixture
def worker_mode():
    """The web process's side of worker mode: messages are recorded, not run."""
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    with mock.patch.object(app, "send_task") as send:
        yield send
        DISPATCHER.flush()  # a trailing send still goes to the mock
    DISPATCHER.reset()
    app.conf.task_always_eager = saved


def debounce_messages(send: mock.Mock) -> list[tuple[int, float]]:
    return [
        (c.kwargs["args"][0], c.kwargs["countdown"])
        for c in send.call_args_list
        if c.args[0] == stages.RUNBOOK_DEBOUNCE
    ]


def deliver(client, body: dict) -> None:
    """A delivery processed by the worker's code, here (the broker is a mock)."""
    assert post(client, "generic", body).status_code == 202
    for outbox_id in IngestOutbox.objects.filter(processed_at__isnull=True).values_list(
        "pk", flat=True
    ):
        outbox_process(outbox_id=outbox_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets", "window")
def test_a_storm_of_joining_alerts_sends_one_debounce_message(client, worker_mode):
    make_source("generic")
    deliver(client, alert(0))
    incident = Incident.objects.get()
    assert versions(incident) == [(1, RunbookStatus.QUEUED)]  # asked at once, no wait
    assert debounce_messages(worker_mode) == []
    Runbook.objects.filter(incident=incident).update(status=RunbookStatus.READY)

    for i in range(1, 11):
        deliver(client, alert(i))
    [(incident_id, countdown)] = debounce_messages(worker_mode)
    assert incident_id == incident.pk and WINDOW - 5 <= countdown <= WINDOW
    assert len(versions(incident)) == 1

    # The message, once its countdown is over, asks for the one refresh.
    later = timezone.now() + timedelta(seconds=WINDOW + 1)
    assert stages.runbook_debounce(incident_id=incident.pk, now=later) is None
    assert [v for v, _ in versions(incident)] == [1, 2]
    assert stages.runbook_debounce(incident_id=incident.pk, now=later) is None
    assert len(versions(incident)) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets", "window")
def test_the_sweep_refreshes_when_the_message_was_lost(client, worker_mode):
    make_source("generic")
    deliver(client, alert(0))
    incident = Incident.objects.get()
    Runbook.objects.filter(incident=incident).update(status=RunbookStatus.READY)
    worker_mode.side_effect = ConnectionError("broker down")  # the message is lost
    deliver(client, alert(1))
    worker_mode.side_effect = None
    assert stages.pipeline_sweep().refreshes_checked == 0  # not due yet
    report = stages.pipeline_sweep(now=timezone.now() + timedelta(seconds=WINDOW + 1))
    assert report.refreshes_checked == 1
    assert [v for v, _ in versions(incident)] == [1, 2]


# --- the whole pipeline: the real worker when the session has one, else eager ---------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets")
def test_first_alert_diagnosed_at_once_and_joins_refresh_once(client, pipeline, settings):
    window = timedelta(seconds=settings.INGEST_RUNBOOK_DEBOUNCE_SECONDS)
    assert window.total_seconds() >= 10  # the default: a diagnosis must not wait for it
    make_source("generic")
    post(client, "generic", alert(0))

    def ready_versions() -> int:
        return Runbook.objects.filter(status=RunbookStatus.READY).count()

    wait_until(ready_versions, timeout=60, what="the first runbook to be ready")
    incident = Incident.objects.get()
    group = AlertGroup.objects.get(incident=incident)
    # Asked for before the alerts could have been quiet for one window: at once.
    assert group.runbook_requested_at < group.last_alert_at + window
    assert incident.timeline.filter(kind=TimelineKind.RUNBOOK_QUEUED).count() == 1

    for i in range(1, 11):
        assert post(client, "generic", alert(i)).status_code == 202
    wait_until(
        lambda: (
            incident.alerts.count() == 11
            and not IngestOutbox.objects.filter(processed_at__isnull=True).exists()
        ),
        timeout=60,
        what="the joining alerts to be grouped",
    )
    if pipeline is not None:
        wait_until(lambda: worker_idle(app), timeout=60, what="the worker to finish")
    assert incident.runbooks.count() == 1  # ten alerts, no refresh within the window
    assert AlertGroup.objects.get(incident=incident).refresh_wanted_at is not None

    window_passed(incident)
    if pipeline is not None:
        # What the debounce message does when its countdown is over, on the worker.
        app.send_task(stages.RUNBOOK_DEBOUNCE, args=[incident.pk])
    else:
        post(client, "generic", alert(11))  # eager: the next delivery checks
    wait_until(lambda: ready_versions() == 2, timeout=60, what="the refreshed runbook")
    if pipeline is not None:
        wait_until(lambda: worker_idle(app), timeout=60, what="the worker to finish")
    assert [v for v, _ in versions(incident)] == [1, 2]
    assert AlertGroup.objects.get(incident=incident).refresh_wanted_at is None
