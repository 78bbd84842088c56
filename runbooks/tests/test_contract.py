"""The contract: every error reported with its path, ids unique, bounds enforced here."""

import json

import pytest

from runbooks.tests.factories import sample_document
from runbooks.validation import SCHEMA_PATH, validate_runbook


def _walk_objects(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            yield schema
        for value in schema.values():
            yield from _walk_objects(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _walk_objects(item)


def test_sample_is_valid():
    assert validate_runbook(sample_document()) == []


def test_every_error_is_reported_with_its_path():
    doc = sample_document(confidence=1.7, hypotheses=[])
    doc["checks"].append({"id": "Bad Id", "action": "http.health_check"})
    doc["recommended_actions"][0]["safe"] = "yes"
    doc["surprise"] = True
    paths = {(i.path, i.message.split(" ")[0]) for i in validate_runbook(doc)}
    found = {p for p, _ in paths}
    assert "$.confidence" in found
    assert "$.hypotheses" in found
    assert "$.checks[1]" in found  # missing params
    assert "$.checks[1].id" in found  # pattern
    assert "$.recommended_actions[0].safe" in found
    assert "$" in found  # additional property
    assert len(validate_runbook(doc)) >= 6


def test_ids_are_unique_across_checks_and_actions():
    doc = sample_document()
    doc["recommended_actions"][0]["id"] = "check_health"
    issues = validate_runbook(doc)
    assert [i.path for i in issues] == ["$.recommended_actions[0].id"]
    assert "already used at $.checks[0].id" in issues[0].message


@pytest.mark.parametrize("value", [None, [], "runbook", 3])
def test_non_objects_are_invalid(value):
    assert validate_runbook(value)


def test_every_object_in_the_contract_is_closed():
    schema = json.loads(SCHEMA_PATH.read_text())
    objects = list(_walk_objects(schema))
    assert objects
    for obj in objects:
        if obj.get("description", "").startswith("The action's parameters"):
            continue  # params are closed per action by the registry's schemas
        assert obj.get("additionalProperties") is False, obj
