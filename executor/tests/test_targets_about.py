"""A check is about the incident's service, or says plainly that it is not.

Hostile cases: a service the catalog does not know, a catalog service with no
targets, names that differ from the catalog's in case or spaces. A system target
(database, cache, web app, Fly app) outside the service's own carries a
"not about <service>" label on its dry-run plan and its result, so the runbook
panel, the incident page and the printed report all say so.
"""

import io
import sqlite3

import pytest
from django.core.management import call_command
from django.urls import reverse

from executor.choices import StepKind
from executor.engine import prepare_step, run_step
from executor.models import ActionRequest, CheckRun
from executor.services.action_requests import dry_run_plan
from executor.targets import target_scope
from executor.tests.factories import ServiceFactory, TargetFactory, responder
from incidents.models import Incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_only(settings):
    """The embedded default before any catalog: only the built-in demo targets."""
    settings.EXECUTOR_DEMO_TARGETS = True
    settings.EXECUTOR_TARGETS = {}


def _http(service: str):
    return target_scope(service).resolve(name=None, kinds=("http",))


@pytest.mark.parametrize("service", ["checkout", "Checkout", " checkout ", "chec kout"])
def test_a_service_the_catalog_does_not_know_gets_the_demo_target_labelled(demo_only, service):
    target = _http(service)
    assert target.name == "app" and target.demo
    shown = " ".join(service.split())
    assert target.not_about == f"not about {shown}: target app is this incident tool itself"


def test_no_service_at_all_is_labelled_too(demo_only):
    assert _http("").not_about.startswith("not about any named service: target app")


def test_a_catalog_service_without_targets_is_labelled(demo_only):
    ServiceFactory(name="payments", targets=[])
    assert _http("payments").not_about.startswith("not about payments: ")


def test_own_targets_are_about_the_service_and_near_miss_names_are_not(demo_only):
    web = TargetFactory(name="checkout-web", kind="http", base="http://checkout.internal/healthz")
    ServiceFactory(name="checkout", targets=[web])
    assert _http("checkout").name == "checkout-web" and _http("checkout").not_about == ""
    for near in ("Checkout", "checkout ", "CHECKOUT"):
        borrowed = _http(near)
        # Another service's own target is never borrowed; the demo one says it is not about it.
        assert borrowed.name == "app" and borrowed.not_about.startswith("not about ")


def test_shared_targets_say_they_are_shared_unless_named_for_the_service(settings):
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {
        "athena": {"kind": "postgres", "url": "postgresql://h/athena"},
        "metrics": {"kind": "prometheus", "url": "http://p:9090"},
    }
    scope = target_scope("athena")
    assert scope.resolve(name=None, kinds=("postgres",)).not_about == ""
    other = target_scope("Athena").resolve(name=None, kinds=("postgres",))
    assert other.not_about == "not about Athena: target athena is shared, not Athena's own"
    # Metrics and logs stores hold every service's data: the query picks the service.
    assert target_scope("checkout").resolve(name=None, kinds=("prometheus",)).not_about == ""


def test_results_and_plans_on_a_borrowed_target_carry_the_label(settings, tmp_path):
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.close()
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {"lite": {"kind": "sqlite", "url": f"sqlite:///{path}"}}
    check = prepare_step(
        step={"id": "stats", "action": "database.table_stats", "params": {"table": "orders"}},
        position=0,
        kind=StepKind.CHECK,
        service="checkout",
    )
    outcome = run_step(check, timeout=5)
    assert outcome.outcome == "ok"
    assert outcome.summary.startswith("[not about checkout: target lite is shared")
    assert "Table orders" in outcome.summary  # the result itself follows the label
    action = prepare_step(
        step={"id": "vacuum", "action": "database.vacuum", "params": {}},
        position=0,
        kind=StepKind.ACTION,
        service="checkout",
    )
    assert dry_run_plan(action).startswith("[not about checkout: target lite is shared")
    # The same target for its own service: no label.
    own = TargetFactory(name="orders-db", kind="sqlite", base=f"sqlite:///{path}")
    ServiceFactory(name="shop", targets=[own])
    mine = prepare_step(
        step={"id": "stats", "action": "database.table_stats", "params": {"table": "orders"}},
        position=0,
        kind=StepKind.CHECK,
        service="shop",
    )
    assert run_step(mine, timeout=5).summary.startswith("Table orders")


@pytest.mark.django_db(transaction=True)
def test_the_report_and_the_page_say_a_borrowed_check_is_not_about_the_service(
    demo_only, settings, client
):
    settings.ANTHROPIC_API_KEY = ""
    out = io.StringIO()
    call_command(
        "declare_incident",
        "Checkout health check failing, users see 502s",
        "--service",
        "checkout",
        "--severity",
        "SEV2",
        stdout=out,
        stderr=io.StringIO(),
    )
    incident = Incident.objects.get()
    runs = list(CheckRun.objects.filter(execution__runbook__incident=incident))
    on_systems = [r for r in runs if r.target in ("app", "app-db")]
    assert on_systems, [(r.check_id, r.target) for r in runs]
    for run in on_systems:
        assert run.summary.startswith("[not about checkout: target "), run.summary
    report = out.getvalue()
    for run in on_systems:
        assert f"{run.check_id}: [not about checkout: " in report
    for request in ActionRequest.objects.filter(incident=incident, target__in=("app", "app-db")):
        assert request.plan.startswith("[not about checkout: ")

    client.force_login(responder("on-call"))
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "[not about checkout: target app" in page


def test_the_runbook_author_is_told_which_targets_are_not_about_the_service(demo_only):
    from executor.authoring import offered_targets

    by_name = {t["name"]: t for t in offered_targets("checkout")}
    assert by_name["app"]["not_about"].startswith("not about checkout: target app")
    assert "not_about" not in by_name["timeline"]  # messages are not judged
    web = TargetFactory(name="checkout-web", kind="http", base="http://checkout.internal/")
    ServiceFactory(name="checkout", targets=[web])
    by_name = {t["name"]: t for t in offered_targets("checkout")}
    assert "not_about" not in by_name["checkout-web"]
