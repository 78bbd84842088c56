"""The whole pipeline: declare → generate → validate → store → re-verify → run checks → propose."""

import pytest
from django.core.files.storage import storages

from executor.choices import ExecutionStatus
from incidents.choices import TimelineKind
from incidents.services import incident_declare
from runbooks.artifacts import canonical_bytes, sha256_hex
from runbooks.choices import RunbookAuthor, RunbookStatus
from runbooks.validation import validate_runbook
from web.selectors import pipeline_finished


@pytest.mark.django_db(transaction=True)
def test_declared_incident_gets_a_stored_runbook_and_its_checks_run(pipeline, settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = incident_declare(
        description="Checkout database connection pool exhausted: too many connections",
        severity="SEV2",
        service="checkout",
    )
    runbook, execution = pipeline_finished(incident=incident, timeout=60)
    assert runbook is not None and runbook.status == RunbookStatus.READY, runbook and runbook.error
    assert runbook.author == RunbookAuthor.OFFLINE
    assert validate_runbook(runbook.artifact) == []
    body = storages["artifacts"].open(runbook.artifact_key, "rb").read()
    assert body == canonical_bytes(runbook.artifact)
    assert sha256_hex(body) == runbook.artifact_sha256
    assert runbook.artifact_key == (
        f"runbooks/{incident.pk}/{runbook.version}-{runbook.artifact_sha256}.json"
    )
    assert execution.status == ExecutionStatus.DONE
    runs = list(execution.check_runs.all())
    assert [r.check_id for r in runs] == [c["id"] for c in runbook.artifact["checks"]]
    assert {r.step_id for r in runbook.action_requests.all()} == {
        a["id"] for a in runbook.artifact["recommended_actions"]
    }
    kinds = list(incident.timeline.order_by("created_at", "id").values_list("kind", flat=True))
    expected = [
        TimelineKind.DECLARED,
        TimelineKind.RUNBOOK_QUEUED,
        TimelineKind.RUNBOOK_READY,
        TimelineKind.CHECKS_STARTED,
        TimelineKind.CHECKS_DONE,
    ]
    assert [k for k in kinds if k in expected] == expected


@pytest.mark.django_db(transaction=True)
def test_two_versions_of_a_runbook_are_kept(pipeline, settings):
    from runbooks.services import runbook_request

    settings.ANTHROPIC_API_KEY = ""
    incident = incident_declare(description="Service down: health check failing", service="web")
    first, _ = pipeline_finished(incident=incident, timeout=60)
    runbook_request(incident=incident)
    second, _ = pipeline_finished(incident=incident, timeout=60)
    assert (first.version, second.version) == (1, 2)
    assert second.status == RunbookStatus.READY
    # Same planner, same incident: the same content, stored under its own version key.
    assert second.artifact_sha256 == first.artifact_sha256
    assert second.artifact_key != first.artifact_key
