"""The offline planner: sensible, valid and deterministic runbooks from the incident text."""

import json
from datetime import UTC, datetime

import pytest

from executor.authoring import step_issues
from executor.choices import Safety
from executor.registry import REGISTRY
from incidents.models import Incident
from runbooks.generation import generate_runbook_document
from runbooks.generation.offline import plan_offline
from runbooks.tests.conftest import EVERY_KIND
from runbooks.validation import validate_runbook

# configured_targets() reads the target catalog from the database.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("every_kind_of_target")]


SEED = (
    "Our Athena queries for attendance analytics are timing out since this morning. "
    "Users report 30+ second waits. No recent deployments."
)


def _incident(title: str, description: str = "", service: str = "") -> Incident:
    return Incident(
        title=title,
        description=description,
        service=service,
        severity="SEV2",
        detected_at=datetime(2025, 3, 4, 8, 30, tzinfo=UTC),
    )


def _actions(doc: dict) -> list[str]:
    return [a["action"] for a in doc["recommended_actions"]]


def _checks(doc: dict) -> list[str]:
    return [c["action"] for c in doc["checks"]]


def _step(doc: dict, action: str) -> dict:
    return next(s for s in doc["checks"] + doc["recommended_actions"] if s["action"] == action)


SCENARIOS = [
    pytest.param(
        ("Athena attendance queries timing out", SEED, ""),
        "performance_degradation",
        {"database.slow_queries", "database.connection_count"},
        {"database.kill_query"},
        {"database.analyze_table"},  # no table named: no table-specific steps
        id="slow-queries-seed",
    ),
    pytest.param(
        ("Checkout queries slow", "Queries on the orders table take 12 seconds", "checkout"),
        "performance_degradation",
        {"database.slow_queries", "database.table_stats", "database.connection_count"},
        {"database.analyze_table", "database.kill_query"},
        set(),
        id="slow-queries-with-table",
    ),
    pytest.param(
        ("5xx spike after deploy", "Error rate jumped to 12% right after we deployed v2.3", "api"),
        "error_rate_spike",
        {"http.health_check", "metrics.query", "logs.search"},
        {"alert.notify", "service.restart"},
        set(),
        id="error-spike-after-deploy",
    ),
    pytest.param(
        ("Billing is down", "Health check failing, connection refused", "billing"),
        "service_down",
        {"http.health_check", "logs.search"},
        {"alert.notify", "service.restart"},
        set(),
        id="service-down",
    ),
    pytest.param(
        (
            "Connection pool exhausted",
            "too many connections; remaining connection slots are reserved",
            "api",
        ),
        "resource_exhaustion",
        {"database.connection_count", "database.slow_queries"},
        {"database.kill_query"},
        set(),
        id="connection-pool",
    ),
    pytest.param(
        ("Stale prices", "Product pages show stale cache entries for product:price:*", "shop"),
        "cache_issue",
        {"http.health_check"},
        {"cache.invalidate"},
        set(),
        id="stale-cache",
    ),
    pytest.param(
        ("Cache stampede", "thundering herd after the cache expired", "shop"),
        "cache_issue",
        set(),
        {"cache.invalidate"},
        set(),
        id="cache-stampede",
    ),
    pytest.param(
        ("Disk full on worker", "No space left on device", "worker"),
        "resource_exhaustion",
        {"http.health_check", "logs.search"},
        {"alert.notify"},
        {"service.restart", "database.kill_query"},
        id="disk-pressure",
    ),
    pytest.param(
        ("Workers OOMKilled", "memory leak suspected, pods restart hourly", "worker"),
        "resource_exhaustion",
        {"logs.search"},
        {"service.restart"},
        set(),
        id="memory-pressure",
    ),
    pytest.param(
        ("Suspicious admin logins", "Unauthorized access attempts from unknown IPs", "auth"),
        "security_incident",
        {"logs.search"},
        {"alert.notify"},
        {"service.restart", "database.kill_query", "cache.invalidate", "database.analyze_table"},
        id="security",
    ),
]


@pytest.mark.parametrize(("text", "kind", "checks", "actions", "absent"), SCENARIOS)
def test_scenarios(text, kind, checks, actions, absent):
    doc = plan_offline(incident=_incident(*text))
    assert doc["incident_type"] == kind
    assert checks <= set(_checks(doc))
    assert actions <= set(_actions(doc))
    assert not absent & set(_actions(doc) + _checks(doc))
    assert validate_runbook(doc) == []
    assert step_issues(doc) == []
    assert 0.3 <= doc["confidence"] <= 0.8
    # Anything the registry calls destructive is proposed as needing approval.
    for action in doc["recommended_actions"]:
        if REGISTRY[action["action"]].safety == Safety.DESTRUCTIVE:
            assert action["safe"] is False, action


@pytest.mark.parametrize(("text", "kind", "checks", "actions", "absent"), SCENARIOS)
def test_deterministic(text, kind, checks, actions, absent):
    first = json.dumps(plan_offline(incident=_incident(*text)))
    second = json.dumps(plan_offline(incident=_incident(*text)))
    assert first == second


def test_seed_incident():
    doc = plan_offline(incident=_incident("Athena attendance queries timing out", SEED))
    assert doc["incident_type"] == "performance_degradation"
    assert doc["affected_system"] == "athena"
    # "30+ second waits" sets the thresholds; "No recent deployments" is not a deploy.
    assert _step(doc, "database.slow_queries")["params"]["min_duration_ms"] == 30_000
    assert _step(doc, "database.kill_query")["params"] == {"older_than_seconds": 60}
    assert any("No recent deployment" in h for h in doc["hypotheses"])


def test_slow_query_actions_use_the_named_table():
    doc = plan_offline(
        incident=_incident("Reports slow", "Scans of the attendance_facts table take minutes")
    )
    assert _step(doc, "database.table_stats")["params"] == {"table": "attendance_facts"}
    analyze = _step(doc, "database.analyze_table")
    assert analyze["params"] == {"table": "attendance_facts"} and analyze["safe"] is True
    assert _step(doc, "database.kill_query")["safe"] is False


@pytest.mark.parametrize(
    "description",
    [
        "Queries on table users;DROP are slow",
        "Queries on the `users--x` table are slow",
        "Queries on table 1abc are slow",
        "the table is slow",
    ],
)
def test_unsafe_or_missing_table_names_are_never_used(description):
    doc = plan_offline(incident=_incident("Slow queries", description))
    tables = [s["params"].get("table") for s in doc["checks"] + doc["recommended_actions"]]
    for table in filter(None, tables):
        assert table.isidentifier(), table
    assert step_issues(doc) == []
    if "is slow" in description or "1abc" in description:
        assert "database.table_stats" not in _checks(doc)


def test_cache_invalidation_without_a_pattern_uses_the_service_prefix_and_needs_approval():
    doc = plan_offline(
        incident=_incident("Stale cache", "users see stale data from the cache", "shop")
    )
    invalidate = _step(doc, "cache.invalidate")
    assert invalidate["params"]["pattern"] == "shop:*"
    assert invalidate["safe"] is False


def test_security_incident_preserves_evidence():
    doc = plan_offline(
        incident=_incident("Possible breach", "attacker exfiltration of customer data", "auth")
    )
    assert doc["incident_type"] == "security_incident"
    assert _actions(doc) == ["alert.notify"]
    assert all(REGISTRY[c["action"]].safety == Safety.READ_ONLY for c in doc["checks"])
    assert "evidence" in doc["rollback_plan"]


def test_unmatched_text_gets_a_low_confidence_generic_runbook():
    doc = plan_offline(incident=_incident("Something odd", "hard to say"))
    assert doc["confidence"] == 0.3
    assert validate_runbook(doc) == [] and step_issues(doc) == []


def test_confidence_follows_the_match_strength():
    weak = plan_offline(incident=_incident("Checkout is slow"))
    strong = plan_offline(incident=_incident("Athena attendance queries timing out", SEED))
    assert weak["confidence"] < strong["confidence"]


def test_unknown_service_names_are_not_used():
    doc = plan_offline(incident=_incident("API down", "health check failing", "bad service!"))
    assert "logs.search" not in _checks(doc)  # logs.search needs a valid service name
    assert step_issues(doc) == []


def test_only_allowed_actions_are_used(settings):
    settings.EXECUTOR_ALLOWED_ACTIONS = ["database.slow_queries", "alert.notify"]
    doc = plan_offline(incident=_incident("Athena attendance queries timing out", SEED))
    assert set(_checks(doc) + _actions(doc)) <= {"database.slow_queries", "alert.notify"}
    assert validate_runbook(doc) == []


def test_generate_without_key_uses_the_offline_planner(settings):
    settings.ANTHROPIC_API_KEY = ""
    result = generate_runbook_document(incident=_incident("Billing is down", "outage", "billing"))
    assert result.author == "offline"
    assert result.model_id == "offline-planner-v1"
    assert result.validation_errors == [] and result.step_errors == []
    assert result.document["incident_type"] == "service_down"


def test_steps_without_a_target_are_never_chosen(settings):
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {k: v for k, v in EVERY_KIND.items() if v["kind"] != "redis"}
    stampede = _incident("Cache stampede", "thundering herd after the cache expired", "shop")
    doc = plan_offline(incident=stampede)
    assert "cache.invalidate" not in _actions(doc)
    assert "alert.notify" in _actions(doc)
    assert validate_runbook(doc) == [] and step_issues(doc) == []

    settings.EXECUTOR_TARGETS = {"orders-db": EVERY_KIND["main-db"]}
    spike = plan_offline(incident=_incident("5xx spike after deploy", "Error rate jumped", "api"))
    assert _checks(spike) == [] and _actions(spike) == ["alert.notify"]
    assert validate_runbook(spike) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30+ second waits", 30),
        ("timeouts after 30s", 30),
        ("a 5 min delay", 300),
        ("slow queries causing 500s", 0),
        ("p99 took 1.5s", 0),
    ],
)
def test_durations_are_read_from_the_text_without_status_codes(text, seconds):
    from runbooks.generation.offline.facts import duration_seconds

    assert duration_seconds(text) == seconds


def test_prose_with_a_colon_is_not_a_cache_key_and_deletion_is_never_safe():
    doc = plan_offline(
        incident=_incident("Stale cache", "Update: users see stale data from the cache", "")
    )
    patterns = [
        a["params"]["pattern"]
        for a in doc["recommended_actions"]
        if a["action"] == "cache.invalidate"
    ]
    assert "Update:*" not in patterns
    keyed = plan_offline(
        incident=_incident("Stale cache", "keys session:* serve stale carts", "shop")
    )
    [inv] = [a for a in keyed["recommended_actions"] if a["action"] == "cache.invalidate"]
    assert inv["params"]["pattern"] == "session:*"
    assert inv["safe"] is False
