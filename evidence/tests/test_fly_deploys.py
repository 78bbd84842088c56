"""Fly apps as a change source: the images a service's machines run, read from a fake
Machines API speaking the documented list shape, become deploy ChangeEvents once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from evidence.stage import evidence_gather
from executor.tests.factories import ServiceFactory, TargetFactory
from incidents.models import ChangeEvent
from incidents.tests.factories import IncidentFactory
from testing.fakes.fly import APP, NEW_IMAGE, OLD_IMAGE, TOKEN, fly_server, machine

pytestmark = pytest.mark.django_db


def _iso(when) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def app_machines():
    now = timezone.now().replace(microsecond=0)
    return now, [
        machine("148ed123a0e189", "web-1", "started", "ams", "app", updated_at=_iso(now - timedelta(minutes=10))),
        machine("d8d9871b0e4689", "web-2", "started", "ams", "app", updated_at=_iso(now - timedelta(minutes=8))),
        machine("5683d920b1e948", "web-3", "started", "fra", "app", image=OLD_IMAGE, updated_at=_iso(now - timedelta(days=3))),
        machine("91852e6c0e2d38", "web-4", "started", "fra", "app", image="not an image", updated_at=_iso(now)),
    ]  # fmt: skip


def _own_fly_target(fake, monkeypatch, *, owned: bool = True):
    monkeypatch.setenv("FLY_TEST_TOKEN", TOKEN)
    target = TargetFactory(
        name="fly-checkout",
        kind="fly",
        base=f"{fake.base}/v1/apps/{APP}",
        secret_env="FLY_TEST_TOKEN",
    )
    ServiceFactory(name="checkout", targets=[target] if owned else [])
    return target


def test_an_image_the_machines_moved_to_is_a_deploy_with_the_image_it_replaced(
    app_machines, monkeypatch
):
    now, machines = app_machines
    with fly_server(machines) as fake:
        _own_fly_target(fake, monkeypatch)
        incident = IncidentFactory(service="checkout", detected_at=now)
        evidence_set = evidence_gather(incident=incident, seconds=5)

        [event] = ChangeEvent.objects.filter(origin="fly")
        assert (event.service, event.kind, event.version) == ("checkout", "deploy", NEW_IMAGE)
        assert event.previous_version == OLD_IMAGE
        assert event.started_at == now - timedelta(minutes=10)
        assert event.finished_at == now - timedelta(minutes=8)
        [change] = [e for e in evidence_set.items.all() if e.collector == "changes"]
        assert change.data["version"] == NEW_IMAGE and change.data["minutes_before_onset"] == 10
        # Read-only, authenticated: GETs of the machine list and nothing else.
        assert fake.posts() == []
        assert {path for _, path, _, _ in fake.requests} == {f"/v1/apps/{APP}/machines"}

        # A restart later bumps the machines' update time: not a second deploy.
        for m in fake.machines:
            m["updated_at"] = _iso(now)
        evidence_gather(incident=incident, seconds=5)
        assert ChangeEvent.objects.filter(origin="fly").count() == 1


def test_an_unreadable_app_is_an_error_finding_and_the_stage_goes_on(app_machines, monkeypatch):
    now, machines = app_machines
    with fly_server(machines) as fake:
        _own_fly_target(fake, monkeypatch)
        fake.fail("list", "*", 500)
        incident = IncidentFactory(service="checkout", detected_at=now)
        evidence_set = evidence_gather(incident=incident, seconds=5)
    statuses = [(e.collector, e.status) for e in evidence_set.items.all()]
    assert ("changes", "error") in statuses and ("changes", "empty") in statuses
    failed = next(e for e in evidence_set.items.all() if e.status == "error")
    assert "500" in failed.summary and TOKEN not in failed.summary
    assert not ChangeEvent.objects.filter(origin="fly").exists()


def test_an_app_the_service_does_not_own_is_not_read(app_machines, monkeypatch):
    now, machines = app_machines
    with fly_server(machines) as fake:
        _own_fly_target(fake, monkeypatch, owned=False)
        evidence_gather(incident=IncidentFactory(service="checkout", detected_at=now), seconds=5)
        assert fake.requests == []
    assert not ChangeEvent.objects.filter(origin="fly").exists()
