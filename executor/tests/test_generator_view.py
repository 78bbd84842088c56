"""The generator's view of the executor: only steps that have a target, for the incident's service.

The action catalog (in Claude's system prompt), the structured-output schema and
the offline planner all come from `executor.authoring.step_targets`, which
reads the same configured targets and service catalog as the executor.
"""

from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from executor.authoring import action_catalog, output_schema, step_targets
from executor.targets import resolve_target
from executor.tests.factories import ServiceFactory, TargetFactory
from incidents.models import Incident
from runbooks.generation.offline import plan_offline
from runbooks.generation.prompt import system_blocks
from runbooks.validation import validate_runbook

pytestmark = pytest.mark.django_db

DATABASE_STEPS = {
    "database.slow_queries",
    "database.table_stats",
    "database.connection_count",
    "database.analyze_table",
    "database.kill_query",
}
FLY_STEPS = {"service.restart", "service.scale", "deploy.rollback"}


@pytest.fixture
def only_postgres(settings):
    """No built-in demo targets, no environment targets: one PostgreSQL target in the catalog."""
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {}
    return TargetFactory(
        name="billing-db", kind="postgres", base="db.internal:5432/billing", secret_env="BILLING_DB"
    )


def _schema_actions(schema: dict) -> set[str]:
    return {
        v["properties"]["action"]["const"]
        for section in ("checks", "recommended_actions")
        for v in schema["properties"][section]["items"].get("anyOf", [])
    }


def _schema_targets(schema: dict, action: str) -> list[str] | None:
    for section in ("checks", "recommended_actions"):
        for v in schema["properties"][section]["items"].get("anyOf", []):
            if v["properties"]["action"]["const"] == action:
                target = v["properties"]["params"]["properties"].get("target")
                return target["enum"] if target else None
    raise AssertionError(f"{action} is not in the schema")


def _incident(title: str, description: str, service: str) -> Incident:
    return Incident(
        title=title,
        description=description,
        service=service,
        severity="SEV2",
        detected_at=datetime(2025, 3, 4, 8, 30, tzinfo=UTC),
    )


def test_only_a_postgres_target_offers_database_steps_and_notify(only_postgres):
    names = {e["name"] for e in action_catalog()}
    assert names == DATABASE_STEPS | {"alert.notify"}
    assert _schema_actions(output_schema()) == DATABASE_STEPS | {"alert.notify"}
    for absent in ("metrics.query", "logs.search", "cache.invalidate", "http.health_check"):
        assert absent not in names
    assert not FLY_STEPS & names
    # The timeline is always there, so people can always be told.
    notify = next(e for e in action_catalog() if e["name"] == "alert.notify")
    assert notify["targets"] == ["timeline"]
    assert _schema_targets(output_schema(), "database.slow_queries") == ["billing-db"]
    # The prompt's catalog is the same list.
    system = system_blocks()[0]["text"]
    assert "database.slow_queries" in system and "alert.notify" in system
    assert "cache.invalidate" not in system and "service.restart" not in system


def test_a_redis_target_for_the_service_brings_cache_invalidate_in(only_postgres):
    assert "cache.invalidate" not in step_targets("shop")
    cache = TargetFactory(name="shop-cache", kind="redis", secret_env="SHOP_REDIS_URL")
    ServiceFactory(name="shop", team="storefront", targets=[cache, only_postgres])
    assert step_targets("shop")["cache.invalidate"] == ["shop-cache"]
    assert "cache.invalidate" in _schema_actions(output_schema(service="shop"))
    assert _schema_targets(output_schema(service="shop"), "cache.invalidate") == ["shop-cache"]
    entry = next(e for e in action_catalog("shop") if e["name"] == "cache.invalidate")
    assert entry["targets"] == ["shop-cache"] and entry["target_kinds"] == ["redis"]


def test_a_service_sees_its_own_targets_and_never_another_services(only_postgres, settings):
    settings.EXECUTOR_TARGETS = {"shared-db": {"kind": "postgres", "url": "postgresql://s/x"}}
    orders_db = TargetFactory(name="orders-db", kind="postgres", base="o:5432/orders")
    orders_cache = TargetFactory(name="orders-cache", kind="redis", base="c:6379")
    ServiceFactory(name="orders", targets=[orders_db, orders_cache])
    ServiceFactory(name="billing", targets=[only_postgres])

    # Its own database only, although two more PostgreSQL targets are configured.
    assert step_targets("billing")["database.slow_queries"] == ["billing-db"]
    assert _schema_targets(output_schema(service="billing"), "database.slow_queries") == [
        "billing-db"
    ]
    # Another service's Redis is not a reason to offer cache.invalidate to billing.
    assert "cache.invalidate" not in step_targets("billing")
    assert "cache.invalidate" not in _schema_actions(output_schema(service="billing"))
    # A service without a database of its own gets the shared one, not another service's.
    # Not in the catalog: the shared targets only, never one a service claims.
    assert step_targets("payments")["database.slow_queries"] == ["shared-db"]
    ServiceFactory(name="payments")
    assert step_targets("payments")["database.slow_queries"] == ["shared-db"]
    # The executor agrees on the default target for the service's own kinds.
    assert resolve_target(name=None, kinds=("postgres",), service="billing").name == "billing-db"


def test_disabled_targets_are_not_offered(only_postgres):
    only_postgres.enabled = False
    only_postgres.save()
    assert set(step_targets()) == {"alert.notify"}
    assert _schema_actions(output_schema()) == {"alert.notify"}


def test_fly_steps_need_a_fly_target(only_postgres):
    fly_row = TargetFactory(
        name="billing-fly", kind="fly", base="billing-api", secret_env="FLY_API_TOKEN"
    )
    offered = step_targets()
    for name in FLY_STEPS:
        assert offered[name] == [fly_row.name]
    schema = output_schema()
    assert _schema_actions(schema) >= FLY_STEPS
    Draft202012Validator.check_schema(schema)


def test_offline_planner_keeps_to_the_offered_steps(only_postgres):
    stampede = _incident("Cache stampede", "thundering herd after the cache expired", "shop")
    doc = plan_offline(incident=stampede)
    actions = [a["action"] for a in doc["recommended_actions"]]
    assert actions == ["alert.notify"]  # no Redis target: no cache.invalidate
    assert validate_runbook(doc) == []

    cache = TargetFactory(name="shop-cache", kind="redis", base="c:6379")
    ServiceFactory(name="shop", targets=[cache])
    doc = plan_offline(incident=stampede)
    assert "cache.invalidate" in [a["action"] for a in doc["recommended_actions"]]

    down = plan_offline(incident=_incident("Billing is down", "health check failing", "billing"))
    used = {s["action"] for s in down["checks"] + down["recommended_actions"]}
    assert used <= set(step_targets("billing"))
    assert "service.restart" not in used and "http.health_check" not in used


def test_the_output_schema_is_built_once_per_catalog_and_follows_it(only_postgres):
    before = output_schema(service="shop")
    assert output_schema(service="shop") is before  # the same catalog: built once
    cache = TargetFactory(name="shop-cache", kind="redis", secret_env="SHOP_REDIS_URL")
    ServiceFactory(name="shop", targets=[cache, only_postgres])
    after = output_schema(service="shop")
    assert after is not before
    assert "cache.invalidate" in _schema_actions(after)
    assert "cache.invalidate" not in _schema_actions(before)
