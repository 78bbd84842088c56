"""The seed contract's parameter names are accepted only with the registry's own checks."""

import pytest

from executor.choices import StepKind
from executor.engine import prepare_step
from executor.models import Service, Target


@pytest.fixture
def catalog(settings):
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {}
    settings.SLACK_CHANNEL = "#ops"
    web = Target.objects.create(name="shop-web", kind="http", base="https://shop.internal/api")
    fly = Target.objects.create(name="shop-fly", kind="fly", base="shop")
    other_fly = Target.objects.create(name="mail-fly", kind="fly", base="mail")
    Service.objects.create(name="shop").targets.set([web, fly])
    Service.objects.create(name="mail").targets.set([other_fly])
    Service.objects.create(name="billing")


def check(action: str, params: dict, service: str = "shop"):
    step = {"id": "s", "action": action, "params": params}
    return prepare_step(step=step, position=0, kind=StepKind.CHECK, service=service)


def act(action: str, params: dict, service: str = "shop"):
    step = {"id": "s", "action": action, "params": params}
    return prepare_step(step=step, position=0, kind=StepKind.ACTION, service=service)


@pytest.mark.django_db
def test_a_health_url_under_the_services_target_becomes_target_and_path(catalog):
    step = check("http.health_check", {"url": "https://shop.internal/api/health"})
    assert step.blocked == ""
    assert step.params == {"target": "shop-web", "path": "/health"}
    assert step.target.name == "shop-web"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/api/health",
        "http://shop.internal/api/health",  # another scheme is another origin
        "https://shop.internal/apiv2",  # a sibling path, not under /api
        "https://shop.internal/api/health?x=1",
    ],
)
def test_a_free_url_is_refused(catalog, url):
    step = check("http.health_check", {"url": url})
    assert step.spec is None and step.blocked.startswith("refused parameters: ")


@pytest.mark.django_db
def test_a_url_for_an_incident_of_a_service_without_http_target_is_refused(catalog):
    step = check("http.health_check", {"url": "https://shop.internal/api/health"}, "billing")
    assert "has no http target" in step.blocked


@pytest.mark.django_db
def test_service_resolves_through_the_catalog_to_a_target_this_incident_may_use(catalog):
    assert act("service.restart", {"service": "shop"}).params == {"target": "shop-fly"}
    assert "not in the service catalog" in act("service.restart", {"service": "nope"}).blocked
    assert "no Fly.io target" in act("service.restart", {"service": "mail"}).blocked


@pytest.mark.django_db
def test_channel_must_be_a_configured_one(catalog):
    ok = act("alert.notify", {"channel": "#ops", "message": "hi"})
    assert ok.blocked == "" and ok.params["channel"] == "#ops"
    refused = act("alert.notify", {"channel": "#random", "message": "hi"})
    assert "not a configured channel (configured: #ops)" in refused.blocked


@pytest.mark.django_db
def test_aliases_map_and_conflicts_are_refused(catalog):
    assert act("cache.invalidate", {"key_pattern": "cart:*"}).params == {"pattern": "cart:*"}
    assert act("database.kill_query", {"query_id": "42"}).params == {"pid": 42}
    assert act("database.kill_query", {"query_id": "x"}).blocked.startswith("refused")
    both = act("cache.invalidate", {"key_pattern": "a:*", "pattern": "b:*"})
    assert "both given and differ" in both.blocked
    metrics = check("metrics.query", {"query": "up", "range_minutes": 30})
    assert metrics.params == {"query": "up", "lookback_minutes": 30}
    assert check("database.slow_queries", {"lookback_minutes": 60}).params == {}
    assert check("database.slow_queries", {"lookback_minutes": 0}).blocked.startswith("refused")
