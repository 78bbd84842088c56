"""An approval holds for the target the plan showed: a target re-pointed since is never acted on."""

import sqlite3

import pytest

from executor import services
from executor.choices import ActionStatus
from executor.models import ActionRequest
from executor.models import Target as TargetRow
from executor.services.pinning import target_fingerprint
from executor.targets import ResolvedTarget, configured_targets, redact_url
from incidents.choices import TimelineKind

from .approval_helpers import make_approver, pending_requests, step

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]


def _database(path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)")
        conn.execute("CREATE INDEX orders_total ON orders (total)")
        conn.executemany("INSERT INTO orders (total) VALUES (?)", [(i,) for i in range(20)])
    return f"sqlite:///{path}"


def _analyzed(url: str) -> bool:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return bool(
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
        )


@pytest.fixture
def dbs(tmp_path):
    first, second = _database(tmp_path / "first.db"), _database(tmp_path / "second.db")
    TargetRow.objects.create(name="ops-db", kind="sqlite", base=first)
    return first, second


def _analyze(*, safe: bool = False) -> ActionRequest:
    return pending_requests(
        step("stats", "database.analyze_table", safe=safe, table="orders", target="ops-db")
    )["stats"]


def test_the_plan_pins_kind_redacted_url_and_fingerprint(dbs):
    request = _analyze()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert (request.target, request.target_kind, request.target_url) == (
        "ops-db",
        "sqlite",
        redact_url(dbs[0]),
    )
    assert request.target_fingerprint == target_fingerprint(configured_targets()["ops-db"])


def test_the_fingerprint_covers_whatever_decides_where_it_acts():

    base = ResolvedTarget(
        "db", "postgres", "postgresql://u:one@h/app", "DB_URL", options={"s": "a"}
    )
    variants = [
        ResolvedTarget("db", "postgres", "postgresql://u:two@h/app", "DB_URL", options={"s": "a"}),
        ResolvedTarget(
            "db", "postgres", "postgresql://u:one@h/other", "DB_URL", options={"s": "a"}
        ),
        ResolvedTarget("db", "sqlite", "postgresql://u:one@h/app", "DB_URL", options={"s": "a"}),
        ResolvedTarget("db", "postgres", "postgresql://u:one@h/app", "OTHER", options={"s": "a"}),
        ResolvedTarget("db", "postgres", "postgresql://u:one@h/app", "DB_URL", options={"s": "b"}),
    ]
    assert len({target_fingerprint(t) for t in [base, *variants]}) == 6
    # No secret in what is stored for display.
    assert "one" not in base.display_url


def test_a_target_repointed_before_approval_is_asked_again_not_approved(dbs):
    first, second = dbs
    request = _analyze()
    round_before, plan_before = request.approval_round, request.plan
    TargetRow.objects.filter(name="ops-db").update(base=second)
    approver = make_approver("boss")
    with pytest.raises(services.ExecutorError, match="ops-db changed since the plan: URL"):
        services.action_request_approve(action_request=request, approver=approver)
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert request.approval_round == round_before + 1
    shown = redact_url(second)
    assert request.target_url == shown and shown in request.plan and plan_before != request.plan
    assert not request.approvals.exists()
    assert not _analyzed(first) and not _analyzed(second)
    event = request.incident.timeline.filter(kind=TimelineKind.ACTION_STATUS).latest("created_at")
    assert (
        "asked again with a fresh dry-run" in event.message and redact_url(first) in event.message
    )
    # Approving what is now shown goes through, on the target shown.
    done = services.action_request_approve(action_request=request, approver=approver)
    assert done.status == ActionStatus.SUCCEEDED, done.error
    assert _analyzed(second) and not _analyzed(first)


def test_a_target_whose_kind_changed_is_asked_again_saying_so(dbs, tmp_path):
    request = _analyze()
    TargetRow.objects.filter(name="ops-db").update(
        kind="postgres", base="postgresql://ops@127.0.0.1:1/elsewhere"
    )
    with pytest.raises(services.ExecutorError, match="kind sqlite → postgres"):
        services.action_request_approve(action_request=request, approver=make_approver("boss"))
    request.refresh_from_db()
    assert request.status == ActionStatus.AWAITING_APPROVAL
    assert request.target_kind == "postgres"
    assert request.target_url == "postgresql://ops@127.0.0.1:1/elsewhere"


def test_a_target_that_no_longer_resolves_blocks_the_request(dbs):
    request = _analyze()
    TargetRow.objects.filter(name="ops-db").update(enabled=False)
    with pytest.raises(services.ExecutorError, match="the request is blocked"):
        services.action_request_approve(action_request=request, approver=make_approver("boss"))
    request.refresh_from_db()
    assert request.status == ActionStatus.BLOCKED
    assert not request.approvals.exists()


def test_a_target_repointed_after_the_plan_is_never_run_on(dbs):
    first, second = dbs
    request = _analyze(safe=True)
    assert request.status == ActionStatus.PROPOSED
    TargetRow.objects.filter(name="ops-db").update(base=second)
    ran = services.action_request_run(action_request=request, actor=make_approver("responder"))
    assert ran.status == ActionStatus.FAILED
    assert "ops-db changed since the plan" in ran.error
    assert not _analyzed(first) and not _analyzed(second)


def test_an_approved_request_whose_target_moved_before_the_worker_is_not_run(dbs, monkeypatch):
    first, second = dbs
    request = _analyze()
    # The target is re-pointed between the approval and the worker's run.
    monkeypatch.setattr(services.approvals, "queue_action_run", lambda pk: None)
    approved = services.action_request_approve(action_request=request, approver=make_approver("b"))
    assert approved.status == ActionStatus.RUNNING
    TargetRow.objects.filter(name="ops-db").update(base=second)
    done = services.action_request_execute(action_request_id=request.pk)
    assert done.status == ActionStatus.FAILED and "changed since the plan" in done.error
    assert not _analyzed(first) and not _analyzed(second)


def test_the_queue_shows_the_pinned_kind_and_url_without_secrets(dbs, client):
    from django.urls import reverse

    TargetRow.objects.filter(name="ops-db").update(
        kind="postgres", base="postgresql://ops@127.0.0.1:1/orders"
    )
    request = _analyze()
    ActionRequest.objects.filter(pk=request.pk).update(
        target_url="postgresql://ops:***@127.0.0.1:1/orders"
    )
    client.force_login(make_approver("boss"))
    for url in (
        reverse("admin:executor_actionrequest_changelist"),
        reverse("admin:executor_actionrequest_change", args=[request.pk]),
    ):
        body = client.get(url).content.decode()
        assert "postgres · <code>postgresql://ops:***@127.0.0.1:1/orders</code>" in body
