"""Action requests: the registry decides safety, transitions are exclusive, approvals guarded."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from executor import services
from executor.choices import ActionStatus, ExecutionStatus
from executor.models import ActionRequest, Execution
from executor.services import executions
from incidents.choices import TimelineKind
from incidents.tests.factories import UserFactory
from runbooks.tests.factories import ready_runbook, sample_document

from .approval_helpers import make_approver, notify_request, step
from .factories import TargetFactory

# Real commits, so work queued with on_commit runs (inline: eager).
pytestmark = pytest.mark.django_db(transaction=True)


def _requests_for(document: dict) -> dict[str, ActionRequest]:
    runbook = ready_runbook(document)
    execution = services.execution_run(runbook_id=runbook.pk)
    assert execution.status == ExecutionStatus.DONE
    return {r.step_id: r for r in runbook.action_requests.all()}


def test_registry_overrides_claudes_safe_flag(settings):
    settings.EXECUTOR_TARGETS = {"db": {"kind": "postgres", "url": "postgresql://127.0.0.1:1/x"}}
    doc = sample_document(
        recommended_actions=[
            step("kill_query", "database.kill_query", safe=True, older_than_seconds=30),
            step("notify_ok", "alert.notify", safe=True, message="hi"),
            step("notify_careful", "alert.notify", safe=False, message="hi"),
        ]
    )
    reqs = _requests_for(doc)
    assert reqs["kill_query"].status == ActionStatus.AWAITING_APPROVAL
    assert "destructive" in reqs["kill_query"].approval_reason
    assert reqs["kill_query"].expires_at is not None
    assert reqs["notify_ok"].status == ActionStatus.PROPOSED
    assert reqs["notify_careful"].status == ActionStatus.AWAITING_APPROVAL
    assert "unsafe" in reqs["notify_careful"].approval_reason


def test_unknown_and_injected_actions_are_blocked():
    doc = sample_document(
        recommended_actions=[
            step("rm", "shell.exec", safe=True, command="rm -rf /"),
            step("analyze", "database.analyze_table", safe=True, table="users; DROP TABLE users"),
        ]
    )
    reqs = _requests_for(doc)
    assert reqs["rm"].status == ActionStatus.BLOCKED
    assert "not an allowed action" in reqs["rm"].error
    assert reqs["analyze"].status == ActionStatus.BLOCKED
    assert "refused parameters" in reqs["analyze"].error
    assert reqs["analyze"].plan == ""  # no dry-run was even attempted
    with pytest.raises(services.ExecutorError):
        services.action_request_run(action_request=reqs["analyze"])


def test_tampered_artifact_is_refused():
    runbook = ready_runbook()
    storage = storages["artifacts"]
    doc = dict(runbook.artifact)
    doc["checks"] = [{"id": "evil", "action": "database.kill_query", "params": {"pid": 1}}]
    storage.delete(runbook.artifact_key)
    # A valid runbook with an evil step: only the hash check can catch it.
    from runbooks.artifacts import canonical_bytes

    storage.save(runbook.artifact_key, ContentFile(canonical_bytes(doc)))
    execution = services.execution_run(runbook_id=runbook.pk)
    assert execution.status == ExecutionStatus.REFUSED
    assert "refusing to run it" in execution.error
    assert execution.check_runs.count() == 0
    assert runbook.action_requests.count() == 0
    assert runbook.incident.timeline.filter(kind=TimelineKind.EXECUTION_REFUSED).exists()


def test_missing_artifact_is_refused():
    runbook = ready_runbook()
    storages["artifacts"].delete(runbook.artifact_key)
    execution = services.execution_run(runbook_id=runbook.pk)
    assert execution.status == ExecutionStatus.REFUSED
    assert "cannot be read" in execution.error


def test_safe_action_runs_once_when_a_responder_asks():
    reqs = _requests_for(sample_document())
    request = reqs["notify_team"]
    responder = UserFactory()
    request = services.action_request_run(action_request=request, actor=responder)
    # Eager: the worker side already ran.
    assert request.status == ActionStatus.SUCCEEDED, request.error
    assert "Recorded on the incident timeline" in request.result["summary"]
    assert request.started_at and request.finished_at
    # A second click, a redelivered task: nothing runs again.
    with pytest.raises(services.ExecutorError):
        services.action_request_run(action_request=request, actor=responder)
    again = services.action_request_execute(action_request_id=request.pk)
    assert again.finished_at == request.finished_at
    messages = list(
        request.incident.timeline.filter(kind=TimelineKind.ACTION_STATUS).values_list(
            "message", flat=True
        )
    )
    assert sum("succeeded" in m for m in messages) == 1


def test_unsafe_action_cannot_be_run_without_approval():
    request = notify_request("n", message="x")
    with pytest.raises(services.ExecutorError, match="needs approval"):
        services.action_request_run(action_request=request, actor=UserFactory())
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL


def test_approval_rules_and_single_execution():
    request = notify_request("n", message="x")
    requester = make_approver("requester")
    ActionRequest.objects.filter(pk=request.pk).update(requested_by=requester)
    request.refresh_from_db()

    with pytest.raises(services.ExecutorError, match="permission"):
        services.action_request_approve(action_request=request, approver=UserFactory())
    with pytest.raises(services.ExecutorError, match="someone else must approve"):
        services.action_request_approve(action_request=request, approver=requester)
    with pytest.raises(services.ExecutorError, match="reason is required"):
        services.action_request_reject(
            action_request=request, approver=make_approver("approver"), reason=" "
        )

    request = services.action_request_approve(
        action_request=request, approver=make_approver("approver")
    )
    assert request.status == ActionStatus.SUCCEEDED
    assert request.approvals.count() == 1
    with pytest.raises(services.ExecutorError, match="cannot be approved"):
        services.action_request_approve(action_request=request, approver=make_approver("late"))


def test_expired_request_cannot_be_approved():
    request = notify_request("n", message="x")
    ActionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(services.ExecutorError, match="expired"):
        services.action_request_approve(action_request=request, approver=make_approver("approver"))
    assert services.action_requests_expire() == 1
    request.refresh_from_db()
    assert request.status == ActionStatus.EXPIRED


def test_rejection_is_final_and_recorded():
    request = notify_request("n", message="x")
    approver = make_approver("approver")
    request = services.action_request_reject(
        action_request=request, approver=approver, reason="wrong incident"
    )
    assert request.status == ActionStatus.REJECTED
    assert request.approvals.get().reason == "wrong incident"
    with pytest.raises(services.ExecutorError):
        services.action_request_approve(action_request=request, approver=make_approver("other"))


def test_sweeper_marks_lost_actions_and_never_reruns_them(settings):
    settings.EXECUTOR_STALE_AFTER_SECONDS = 60
    request = _requests_for(sample_document())["notify_team"]
    long_ago = timezone.now() - timedelta(hours=1)
    # As a worker killed mid-run leaves it: running, claimed, never finished.
    ActionRequest.objects.filter(pk=request.pk).update(
        status=ActionStatus.RUNNING, started_at=long_ago
    )
    counts = services.sweep_stale()
    assert counts["actions_lost"] == 1
    request.refresh_from_db()
    assert request.status == ActionStatus.FAILED
    assert request.error == "worker lost: outcome unknown, verify before retrying"
    again = services.action_request_execute(action_request_id=request.pk)
    assert again.status == ActionStatus.FAILED and again.result == {}


def test_action_requests_are_created_once_per_runbook():
    runbook = ready_runbook()
    services.execution_run(runbook_id=runbook.pk)
    services.execution_run(runbook_id=runbook.pk)  # a redelivered pipeline task
    services.execution_run(runbook_id=runbook.pk, trigger="replay")
    assert runbook.action_requests.count() == 1
    assert runbook.executions.count() == 3


def test_an_action_runs_against_the_target_its_plan_named(settings, http_server):
    request = _requests_for(sample_document())["notify_team"]
    assert request.target == "timeline"
    # A Slack target appears after the plan was made: it would now be the default.
    hook = http_server(lambda h: (h.send_response(200), h.end_headers(), h.wfile.write(b"ok")))
    TargetFactory(name="chat", kind="slack", base=hook + "/hook")
    request = services.action_request_run(action_request=request, actor=UserFactory())
    assert request.status == ActionStatus.SUCCEEDED, request.error
    assert "Recorded on the incident timeline" in request.result["summary"]
    assert http_server.requests == []


def test_an_action_the_registry_made_stricter_is_not_run(monkeypatch):
    from executor.choices import Safety
    from executor.registry import REGISTRY

    request = _requests_for(sample_document())["notify_team"]
    assert request.safety == Safety.REVERSIBLE
    stricter = REGISTRY["alert.notify"].__class__(
        **{**REGISTRY["alert.notify"].__dict__, "safety": Safety.DESTRUCTIVE}
    )
    monkeypatch.setitem(REGISTRY, "alert.notify", stricter)
    request = services.action_request_run(action_request=request, actor=UserFactory())
    assert request.status == ActionStatus.FAILED
    assert "now classes alert.notify as destructive" in request.error


def test_an_unexpected_failure_leaves_the_execution_failed_not_running(monkeypatch):
    from executor.models import Execution

    runbook = ready_runbook()

    def broken(**kwargs):
        raise OSError("storage unreachable")

    monkeypatch.setattr(executions, "artifact_load", broken)
    with pytest.raises(OSError):
        services.execution_run(runbook_id=runbook.pk)
    execution = Execution.objects.get(runbook=runbook)
    assert execution.status == ExecutionStatus.FAILED
    assert "storage unreachable" in execution.error
    assert runbook.incident.timeline.filter(message__contains="storage unreachable").exists()


def test_a_redelivered_execution_proposes_each_action_once():
    doc = sample_document(
        recommended_actions=[
            step("notify_a", "alert.notify", message="a"),
            step("notify_b", "alert.notify", message="b"),
        ]
    )
    runbook = ready_runbook(doc)
    first = services.execution_run(runbook_id=runbook.pk)
    again = services.execution_run(runbook_id=runbook.pk)  # the same message, delivered twice
    assert first.status == again.status == ExecutionStatus.DONE
    assert again.check_runs.count() == len(doc["checks"])  # its own check runs were kept
    assert sorted(runbook.action_requests.values_list("step_id", flat=True)) == [
        "notify_a",
        "notify_b",
    ]
    kinds = list(runbook.incident.timeline.values_list("kind", flat=True))
    assert kinds.count(TimelineKind.ACTION_PROPOSED) == 1
    assert kinds.count(TimelineKind.CHECKS_DONE) == 2


def test_the_proposal_event_names_each_request_by_the_id_it_was_stored_under():
    doc = sample_document(
        recommended_actions=[
            step("notify_a", "alert.notify", message="a"),
            step("notify_b", "alert.notify", message="b"),
        ]
    )
    runbook = ready_runbook(doc)
    services.execution_run(runbook_id=runbook.pk)
    event = runbook.incident.timeline.get(kind=TimelineKind.ACTION_PROPOSED)
    named = {a["step_id"]: a["id"] for a in event.payload["actions"]}
    assert named == dict(runbook.action_requests.values_list("step_id", "id"))


def test_on_postgresql_the_record_of_an_execution_is_one_statement():
    """Check runs, the execution's end, the proposals and their events: one data-modifying
    statement, in autocommit (no BEGIN or COMMIT is spent on it)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("one data-modifying statement is PostgreSQL's; set DATABASE_URL")
    runbook = ready_runbook(
        sample_document(recommended_actions=[step("notify_a", "alert.notify", message="a")])
    )
    with CaptureQueriesContext(connection) as queries:
        execution = services.execution_run(runbook_id=runbook.pk)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if any(t in q["sql"] for t in ("executor_checkrun", "incidents_timelineevent"))
    ]
    assert len(writes) == 1, writes
    for table in ("executor_checkrun", "executor_actionrequest", "executor_execution"):
        assert table in writes[0]
    assert execution.status == ExecutionStatus.DONE
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.DONE
    assert execution.check_runs.count() == len(runbook.artifact["checks"])
    kinds = set(runbook.incident.timeline.values_list("kind", flat=True))
    assert {TimelineKind.CHECKS_STARTED, TimelineKind.CHECKS_DONE} <= kinds
    assert TimelineKind.ACTION_PROPOSED in kinds


def test_what_a_target_answers_is_stored_even_with_a_nul_or_a_lone_surrogate(settings, monkeypatch):
    """PostgreSQL refuses both in text and jsonb: one log line holding either must not
    cost the run its record (every check's result, the proposals)."""
    from executor.registry import REGISTRY
    from executor.results import StepResult

    settings.EXECUTOR_TARGETS = {
        "orders": {"kind": "postgres", "url": "postgresql://127.0.0.1:1/x"}
    }

    def answer(params, target, deadline):
        return StepResult("ok", "one\x00two \ud800", {"k\x00": ["v\x00", "\udfff"]}, "a\x00b")

    monkeypatch.setattr(REGISTRY["database.connection_count"].impl, "run", answer)
    check = {"id": "c1", "action": "database.connection_count", "params": {"target": "orders"}}
    runbook = ready_runbook(sample_document(checks=[check]))
    execution = services.execution_run(runbook_id=runbook.pk)
    assert execution.status == ExecutionStatus.DONE, execution.error
    run = execution.check_runs.get()
    assert run.summary.endswith("] onetwo ?")  # after the label saying whose target it is
    assert run.output == "ab"
    assert run.data == {"k": ["v", "?"]}
