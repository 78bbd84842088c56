"""Targets: from the environment and the catalog, secrets only by variable name."""

import pytest
from django.core.exceptions import ValidationError

from executor.models import Target as TargetRow
from executor.results import StepBlocked
from executor.targets import configured_targets, redact_url, resolve_target
from executor.tests.factories import ServiceFactory, TargetFactory

pytestmark = pytest.mark.django_db


def test_catalog_target_takes_its_dsn_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("ORDERS_DB_DSN", "postgresql://app:s3cret@db.internal:5432/orders")
    TargetFactory(name="orders-db", kind="postgres", base="db.internal", secret_env="ORDERS_DB_DSN")
    target = configured_targets()["orders-db"]
    assert target.url.endswith("@db.internal:5432/orders")
    assert "s3cret" not in target.display_url
    assert "s3cret" not in str(target.public())
    # The database holds the variable's name only.
    assert TargetRow.objects.filter(base__contains="s3cret").count() == 0
    assert TargetRow.objects.filter(secret_env__contains="s3cret").count() == 0


def test_a_password_in_the_base_setting_is_refused():
    row = TargetRow(name="bad", kind="postgres", base="postgresql://u:pw@h/db")
    with pytest.raises(ValidationError, match="Do not put a password"):
        row.full_clean()


def test_service_targets_win_over_other_targets_of_the_kind(settings):
    settings.EXECUTOR_TARGETS = {"aaa-db": {"kind": "postgres", "url": "postgresql://h/a"}}
    mine = TargetFactory(name="zzz-db", kind="postgres", base="postgresql://h/z")
    ServiceFactory(name="checkout", targets=[mine])
    assert resolve_target(name=None, kinds=("postgres",), service="checkout").name == "zzz-db"
    assert resolve_target(name=None, kinds=("postgres",), service="other").name == "aaa-db"


def test_env_declared_targets(settings):
    settings.EXECUTOR_TARGETS = {
        "metrics": {"kind": "prometheus", "url": "http://p:9090"},
        "odd": {"kind": "ftp", "url": "ftp://x"},
    }
    targets = configured_targets()
    assert targets["metrics"].kind == "prometheus"
    assert "odd" not in targets  # unknown kinds are never targets
    with pytest.raises(StepBlocked, match="no target named 'odd'"):
        resolve_target(name="odd", kinds=("http",))


def test_disabled_targets_are_not_used():
    TargetFactory(name="off", kind="redis", base="redis://h", enabled=False)
    with pytest.raises(StepBlocked):
        resolve_target(name="off", kinds=("redis",))


def test_redact_url():
    assert redact_url("postgresql://u:pw@h:5/db?sslmode=require") == "postgresql://u:***@h:5/db"
    assert redact_url("http://h:9090/api?token=x") == "http://h:9090/api"


def test_slack_webhook_urls_are_never_displayed(settings):
    settings.EXECUTOR_TARGETS = {"chat": {"kind": "slack", "url": "https://hooks.example/T/B/X"}}
    assert configured_targets()["chat"].display_url == "slack:chat"


def test_a_named_target_of_another_service_is_refused():
    theirs = TargetFactory(name="billing-db", kind="postgres", base="postgresql://h/b")
    mine = TargetFactory(name="shop-db", kind="postgres", base="postgresql://h/s")
    ServiceFactory(name="billing", targets=[theirs])
    ServiceFactory(name="shop", targets=[mine])
    with pytest.raises(StepBlocked, match="belongs to another service"):
        resolve_target(name="billing-db", kinds=("postgres",), service="shop")
    assert resolve_target(name="shop-db", kinds=("postgres",), service="shop").name == "shop-db"


def test_an_unpinned_block_reads_the_catalog_afresh_inside_a_pinned_stage(monkeypatch):
    from executor import targets

    reads = []
    monkeypatch.setattr(targets, "_read_scope", lambda service: reads.append(service) or service)
    with targets.catalog_pinned():
        targets.target_scope("checkout")
        targets.target_scope("checkout")
        assert reads == ["checkout"]  # pinned: one read per service
        with targets.catalog_unpinned():
            targets.target_scope("checkout")
            targets.target_scope("checkout")
        assert reads == ["checkout"] * 3  # the executor's reads are its own
        targets.target_scope("checkout")
        assert reads == ["checkout"] * 3  # and the stage's pin is back


@pytest.mark.parametrize(
    ("service", "own", "elsewhere", "scoped"),
    [
        ("shop", {"shop-db"}, {"billing-db"}, "shop"),  # in the catalog, with its target
        ("bare", set(), {"billing-db", "shop-db"}, "bare"),  # in the catalog, no target
        ("nowhere", None, {"billing-db", "shop-db"}, ""),  # not in the catalog
        ("", None, {"billing-db", "shop-db"}, ""),  # no service named
    ],
)
def test_a_scope_is_read_in_one_statement(
    django_assert_num_queries, service, own, elsewhere, scoped
):
    from executor.targets import target_scope

    theirs = TargetFactory(name="billing-db", kind="postgres", base="postgresql://h/b")
    mine = TargetFactory(name="shop-db", kind="postgres", base="postgresql://h/s")
    TargetFactory(name="shared-db", kind="postgres", base="postgresql://h/x")
    TargetFactory(name="off-db", kind="postgres", base="postgresql://h/o", enabled=False)
    ServiceFactory(name="billing", targets=[theirs])
    ServiceFactory(name="shop", targets=[mine])
    ServiceFactory(name="bare")
    with django_assert_num_queries(1):
        scope = target_scope(service)
    assert scope.own == (frozenset(own) if own is not None else None)
    assert scope.elsewhere == frozenset(elsewhere)
    assert scope.service == scoped
    assert {"billing-db", "shop-db", "shared-db"} <= set(scope.targets)
    assert "off-db" not in scope.targets


def test_a_catalog_service_is_known_even_when_no_target_is_enabled(django_assert_num_queries):
    from executor.targets import target_scope

    ServiceFactory(name="bare")
    with django_assert_num_queries(1):
        scope = target_scope("bare")
    assert scope.own == frozenset() and scope.service == "bare"
    assert target_scope("nowhere").own is None


def test_inside_a_pinned_stage_an_unknown_service_is_not_looked_up_again(
    django_assert_num_queries,
):
    from executor import targets

    with targets.catalog_pinned(), django_assert_num_queries(1):
        targets.target_scope("nowhere")
        assert targets.catalog_service("nowhere") is None
