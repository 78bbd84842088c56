"""The contract as Claude's structured-output schema, and the step checks against the registry."""

from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator

from executor.authoring import (
    MAX_OPTIONAL_PROPERTIES,
    MAX_UNION_PROPERTIES,
    SUPPORTED_KEYWORDS,
    SUPPORTED_STRING_FORMATS,
    action_catalog,
    optional_property_count,
    output_schema,
    step_issues,
    union_property_count,
)
from executor.choices import StepKind
from executor.registry import catalog
from runbooks.tests.factories import sample_document
from runbooks.validation import validate_runbook
from testing.fakes.anthropic import recorded_document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("every_kind_of_target")]


def _schemas(node, path="$") -> Iterator[tuple[str, dict]]:
    """Every subschema with its path (properties, items, anyOf/allOf branches)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _schemas(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _schemas(node["items"], f"{path}[]")
    for key in ("anyOf", "allOf"):
        for i, sub in enumerate(node.get(key, [])):
            yield from _schemas(sub, f"{path}<{key}{i}>")


def _step_variants(schema: dict, section: str) -> list[dict]:
    return schema["properties"][section]["items"]["anyOf"]


def test_every_object_is_closed_and_only_supported_keywords_remain():
    schema = output_schema()
    Draft202012Validator.check_schema(schema)
    for path, node in _schemas(schema):
        assert set(node) <= SUPPORTED_KEYWORDS, (path, set(node) - SUPPORTED_KEYWORDS)
        if node.get("type") == "object" or "properties" in node:
            assert node.get("additionalProperties") is False, path
        assert node.get("minItems", 0) in (0, 1), path
        if "format" in node:
            assert node["format"] in SUPPORTED_STRING_FORMATS, path
        assert "type" in node or "anyOf" in node or "const" in node or "enum" in node, path


def test_dropped_constraints_are_kept_as_hints_in_descriptions():
    schema = output_schema()
    assert "minimum: 0" in schema["properties"]["confidence"]["description"]
    assert "pattern" in schema["properties"]["incident_type"]["description"]


def test_within_the_grammar_complexity_limits():
    schema = output_schema()
    assert optional_property_count(schema) <= MAX_OPTIONAL_PROPERTIES
    assert union_property_count(schema) <= MAX_UNION_PROPERTIES


def test_many_targets_still_fit_the_budget(settings):
    kinds = ["postgres", "redis", "http", "prometheus", "loki", "slack", "fly"]
    settings.EXECUTOR_TARGETS = {
        f"{kind}-{n}": {"kind": kind, "url": f"{kind}://h{n}"} for kind in kinds for n in (1, 2)
    }
    schema = output_schema()
    assert optional_property_count(schema) <= MAX_OPTIONAL_PROPERTIES


def test_steps_are_typed_per_action_and_kind():
    schema = output_schema()
    checks = {v["properties"]["action"]["const"] for v in _step_variants(schema, "checks")}
    actions = {
        v["properties"]["action"]["const"] for v in _step_variants(schema, "recommended_actions")
    }
    assert checks == {s.name for s in catalog(StepKind.CHECK)}
    assert actions == {s.name for s in catalog(StepKind.ACTION)}


def test_only_configured_targets_can_be_named(settings):
    settings.EXECUTOR_DEMO_TARGETS = False  # on PostgreSQL the app's own database is a demo target
    settings.EXECUTOR_TARGETS = {"orders-db": {"kind": "postgres", "url": "postgresql://x/y"}}
    schema = output_schema()
    [slow] = [
        v
        for v in _step_variants(schema, "checks")
        if v["properties"]["action"]["const"] == "database.slow_queries"
    ]
    assert slow["properties"]["params"]["properties"]["target"]["enum"] == ["orders-db"]
    entry = next(e for e in action_catalog() if e["name"] == "database.slow_queries")
    assert entry["targets"] == ["orders-db"]


def test_valid_runbooks_validate_against_the_output_schema():
    validator = Draft202012Validator(output_schema())
    for doc in (recorded_document("athena_valid"), sample_document()):
        assert validate_runbook(doc) == []
        assert list(validator.iter_errors(doc)) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["checks"].append({"id": "x", "action": "database.vacuum_full", "params": {}}),
        lambda d: d["checks"].append(
            {"id": "x", "action": "database.kill_query", "params": {"pid": 1}}
        ),
        lambda d: d["checks"][0]["params"].update({"table": 5}),
        lambda d: d["checks"][0]["params"].update({"rogue": True}),
        lambda d: d["recommended_actions"][1]["params"].update({"pid": 7}),
        lambda d: d.update({"extra": 1}),
    ],
    ids=[
        "unknown-action",
        "action-as-check",
        "param-type",
        "extra-param",
        "both-kill-modes",
        "extra-key",
    ],
)
def test_the_output_schema_rejects_what_the_executor_would_block(change):
    doc = recorded_document("athena_valid")
    change(doc)
    assert list(Draft202012Validator(output_schema()).iter_errors(doc))


def test_step_issues_report_paths():
    doc = recorded_document("athena_valid")
    doc["checks"].append({"id": "c1", "action": "database.vacuum_full", "params": {}})
    doc["checks"].append({"id": "c2", "action": "service.restart", "params": {}})
    doc["recommended_actions"][0]["params"] = {"table": "x y"}
    doc["recommended_actions"][1]["params"] = {"older_than_seconds": 0, "target": "nowhere"}
    issues = {i.path: i.message for i in step_issues(doc)}
    assert "not in the executor's action catalog" in issues["$.checks[3].action"]
    assert "may only use check steps" in issues["$.checks[4].action"]
    assert "$.recommended_actions[0].params.table" in issues
    assert "$.recommended_actions[1].params.older_than_seconds" in issues
    assert "no target named 'nowhere'" in issues["$.recommended_actions[1].params.target"]
    assert step_issues(recorded_document("athena_valid")) == []


def test_allowed_actions_setting_narrows_everything(settings):
    settings.EXECUTOR_ALLOWED_ACTIONS = ["database.slow_queries", "alert.notify"]
    schema = output_schema()
    assert [v["properties"]["action"]["const"] for v in _step_variants(schema, "checks")] == [
        "database.slow_queries"
    ]
    assert [e["name"] for e in action_catalog()] == ["alert.notify", "database.slow_queries"]
    issues = step_issues(recorded_document("athena_valid"))
    assert any(i.path == "$.checks[0].action" for i in issues)


def test_steps_without_a_target_are_left_out_even_without_target_enums(settings):
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {"cache": {"kind": "redis", "url": "redis://c:6379/0"}}
    for schema in (output_schema(), output_schema(with_targets=False)):
        actions = [
            v["properties"]["action"]["const"]
            for v in _step_variants(schema, "recommended_actions")
        ]
        assert actions == ["alert.notify", "cache.invalidate"]
        assert schema["properties"]["checks"]["items"] == {
            "type": "object",
            "properties": {},
            "additionalProperties": False,
        }
    assert [e["name"] for e in action_catalog()] == ["alert.notify", "cache.invalidate"]
