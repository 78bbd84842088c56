"""NaN, Infinity and overflowing numbers never pass the contract, never become an artifact,
and a model answer holding one is an invalid answer: repaired, or replaced offline."""

import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from executor.services import ExecutorError
from executor.services.executions import _load_verified
from incidents.tests.factories import IncidentFactory
from runbooks.artifacts import ArtifactTampered, artifact_load, artifact_store, sha256_hex
from runbooks.choices import RunbookAuthor, RunbookStatus
from runbooks.services import runbook_generate, runbook_request
from runbooks.tests.conftest import EVERY_KIND
from runbooks.tests.factories import ready_runbook, sample_document
from runbooks.validation import validate_runbook
from testing.fakes.anthropic import fake_claude, message, recorded, recorded_document


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_number_anywhere_is_a_contract_violation(bad):
    issues = validate_runbook(sample_document(confidence=bad))
    assert "$.confidence" in {i.path for i in issues}
    doc = sample_document()
    doc["checks"][0]["params"] = {"max_latency_ms": bad}
    assert "$.checks[0].params.max_latency_ms" in {i.path for i in validate_runbook(doc)}
    assert validate_runbook(sample_document()) == []


def _artifact_files(incident_id: int) -> list[str]:
    storage = storages["artifacts"]
    folder = f"runbooks/{incident_id}"
    try:
        return storage.listdir(folder)[1]
    except FileNotFoundError:
        return []


@pytest.mark.django_db
def test_store_refuses_and_load_rejects_non_finite_numbers():
    # The artifact storage may be shared by the whole run (S3): nothing new, not "nothing".
    before = _artifact_files(91)
    with pytest.raises(ValueError):
        artifact_store(incident_id=91, version=1, data=sample_document(confidence=float("nan")))
    assert _artifact_files(91) == before
    # Bytes written by something else: the recorded sha256 matches, the content is not JSON.
    for literal in (b"NaN", b"Infinity", b"1e999", b"-1e400"):
        body = json.dumps(sample_document(confidence=0.5)).encode().replace(b"0.5", literal)
        digest = sha256_hex(body)
        key = f"runbooks/92/1-{digest}.json"
        storages["artifacts"].save(key, ContentFile(body))
        with pytest.raises(ArtifactTampered):
            artifact_load(key=key, expected_sha256=digest)


@pytest.mark.django_db
def test_the_executor_refuses_a_stored_artifact_with_nan():
    runbook = ready_runbook()
    body = json.dumps(sample_document(confidence=float("nan"))).encode()
    storage = storages["artifacts"]
    storage.delete(runbook.artifact_key)
    storage.save(runbook.artifact_key, ContentFile(body))
    runbook.artifact_sha256 = sha256_hex(body)
    with pytest.raises(ExecutorError, match="not valid JSON"):
        _load_verified(runbook)


@pytest.fixture
def claude_settings(settings):
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = None
    settings.ANTHROPIC_MODEL = "claude-sonnet-4-6"
    settings.ANTHROPIC_MAX_RETRIES = 0
    settings.ANTHROPIC_MAX_TOKENS = 4096
    settings.ANTHROPIC_TIMEOUT = 5.0
    settings.EXECUTOR_TARGETS = dict(EVERY_KIND)
    return settings


def _answer_with(literal: str):
    text = json.dumps(recorded_document("athena_valid") | {"confidence": 0.123})
    return message(text.replace("0.123", literal))


def _generate(responses: list):
    incident = IncidentFactory(service="attendance-analytics")
    runbook = runbook_request(incident=incident)  # its task waits for a commit that never comes
    with fake_claude(responses) as fake:
        runbook = runbook_generate(runbook_id=runbook.pk)
    return incident, runbook, fake


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e999"])
def test_a_nan_answer_is_repaired(claude_settings, literal):
    incident, runbook, fake = _generate([_answer_with(literal), recorded("athena_valid")])
    assert runbook.status == RunbookStatus.READY, runbook.error
    assert runbook.author == RunbookAuthor.CLAUDE
    assert runbook.artifact == recorded_document("athena_valid")
    assert len(fake.requests) == 2 and fake.overrun == 0
    assert (
        "not a JSON number" in fake.message_texts(1)[2] or "too large" in fake.message_texts(1)[2]
    )
    assert _artifact_files(incident.pk) == [runbook.artifact_key.rsplit("/", 1)[1]]


@pytest.mark.django_db
def test_nan_twice_falls_back_to_the_offline_planner(claude_settings):
    incident, runbook, fake = _generate([_answer_with("NaN"), _answer_with("-Infinity")])
    assert runbook.status == RunbookStatus.READY, runbook.error
    assert runbook.author == RunbookAuthor.OFFLINE
    assert validate_runbook(runbook.artifact) == []
    assert len(fake.requests) == 2 and fake.overrun == 0
    # Only the offline runbook was stored: nothing of the answers that held NaN.
    [name] = _artifact_files(incident.pk)
    body = storages["artifacts"].open(runbook.artifact_key, "rb").read()
    assert name in runbook.artifact_key and b"NaN" not in body and b"Infinity" not in body
    assert incident.timeline.filter(message__contains="offline planner").exists()


@pytest.mark.django_db
def test_an_answer_with_a_nul_or_a_lone_surrogate_is_stored_cleaned(claude_settings):
    """Neither can be stored (PostgreSQL's text, the artifact's UTF-8): the model's text is
    cleaned where it comes in, and the runbook is made ready from it."""
    document = recorded_document("athena_valid")
    document["affected_system"] = "attendance\u0000 analytics \ud800"
    incident, runbook, fake = _generate([message(json.dumps(document))])
    assert runbook.status == RunbookStatus.READY, runbook.error
    assert runbook.author == RunbookAuthor.CLAUDE
    assert runbook.artifact["affected_system"] == "attendance analytics ?"
    body = storages["artifacts"].open(runbook.artifact_key, "rb").read()
    assert b"attendance analytics ?" in body and len(fake.requests) == 1
