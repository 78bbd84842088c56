"""An approved action runs exactly once: concurrent approvers, retries, a worker killed mid-run.

What the action did is counted on a local server that answers like a Slack webhook,
so "once" means one message really sent, not only a status.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.utils import timezone

from executor import services, tasks
from executor.choices import ActionStatus
from executor.models import ActionRequest, Approval
from incident_response.worker_process import stop_worker_process
from incidents.choices import TimelineKind
from testing.services import ROOT
from testing.waiting import wait_until

from .approval_helpers import make_approver, notify_request, use_slack_target

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]

WORKER_LOST = "worker lost: outcome unknown, verify before retrying"


def _need_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks and concurrent connections); set DATABASE_URL")


def _succeeded_events(request: ActionRequest) -> int:
    return request.incident.timeline.filter(
        kind=TimelineKind.ACTION_STATUS, message__contains=" succeeded"
    ).count()


def test_twenty_concurrent_approvals_run_the_action_once(settings, fake_slack):
    _need_postgres()
    slack = fake_slack
    use_slack_target(settings, slack)
    request = notify_request(message="failing over the checkout database")
    assert request.target == "hook"
    distinct = [make_approver(f"approver{i}") for i in range(16)]
    # Sixteen people, and four of them double-submitting.
    clickers = distinct + distinct[:4]
    barrier = threading.Barrier(len(clickers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def click(user) -> None:
        try:
            barrier.wait(timeout=30)
            services.action_request_approve(action_request=request, approver=user)
            outcome = "approved"
        except services.ExecutorError as exc:
            outcome = f"refused: {exc}"
        except Exception as exc:  # a 500 for an approver would be a bug
            outcome = f"crashed: {exc!r}"
        finally:
            connection.close()  # each thread had its own connection
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=click, args=(u,)) for u in clickers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 20
    assert outcomes.count("approved") == 1, outcomes
    assert not [o for o in outcomes if o.startswith("crashed")], outcomes
    # Everyone else was told why, in words.
    assert all("cannot be approved" in o for o in outcomes if o.startswith("refused")), outcomes

    request.refresh_from_db()
    assert request.status == ActionStatus.SUCCEEDED, request.error
    assert len(slack.posts) == 1  # the message went out once
    assert "failing over the checkout database" in slack.posts[0]["text"]
    assert Approval.objects.filter(action_request=request).count() == 1
    assert _succeeded_events(request) == 1


def test_a_double_submit_and_a_redelivered_task_do_not_run_it_again(settings, fake_slack):
    slack = fake_slack
    use_slack_target(settings, slack)
    request = notify_request()
    approver = make_approver("approver")
    request = services.action_request_approve(action_request=request, approver=approver)
    assert request.status == ActionStatus.SUCCEEDED
    with pytest.raises(services.ExecutorError, match="succeeded; it cannot be approved"):
        services.action_request_approve(action_request=request, approver=approver)
    # The broker delivers the same message again (acks_late after a lost ack).
    assert tasks.run_action_task.apply(args=[request.pk]).get() == ActionStatus.SUCCEEDED
    assert len(slack.posts) == 1
    assert _succeeded_events(request) == 1


# --- a real worker, killed mid-run ------------------------------------------------


def _dedicated_redis(url: str) -> str:
    """Another Redis database than the shared test worker's, so neither sees the other's work."""
    parts = urlsplit(url)
    current = (parts.path or "/0").lstrip("/") or "0"
    db = "13" if current != "13" else "12"
    return urlunsplit(parts._replace(path=f"/{db}"))


class Workers:
    """Real Celery worker processes on the dedicated broker, started and killed by the test."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *, visibility_timeout: int | None = None) -> subprocess.Popen:
        # The solo pool runs the task in the worker process itself: SIGKILL kills the run too.
        # A killed worker's unacked-restore mutex must not block the next one for kombu's
        # default 5 minutes; the restarted worker sweeps every second instead of every ~100 s.
        options: dict = {"unacked_mutex_expire": 5}
        if visibility_timeout:
            options.update(
                visibility_timeout=visibility_timeout,
                unacked_restore_interval=1,
                unacked_restore_throttle=1,
            )
        setup = f"app.conf.broker_transport_options = {options!r}; "
        code = f"import sys; from incident_response.celery import app; {setup}app.worker_main(sys.argv[1:])"
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "worker", "-Q", "executor", "--pool", "solo",
             "-l", "info", "-n", f"{name}@%h", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            stop_worker_process(proc)  # a no-op for one already killed


@pytest.fixture
def kill_env(request, settings, tmp_path) -> Iterator[tuple[dict, object, str]]:
    _need_postgres()
    import redis as redis_lib
    from celery import Celery

    broker = _dedicated_redis(request.getfixturevalue("redis_url"))
    r = redis_lib.Redis.from_url(broker)
    r.flushdb()
    db = connection.settings_dict
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("CELERY_", "TARGET_")):
            env.pop(key)
    env.update(
        DATABASE_URL=f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=broker,
        SLACK_WEBHOOK_URL="",
        SLACK_BOT_TOKEN="",
        EXECUTOR_STALE_AFTER_SECONDS="1",
    )
    # Not the current app: the shared tasks of later tests must stay on the project app.
    client = Celery("kill-test-client", broker=broker, backend=broker, set_as_current=False)
    yield env, client, broker
    client.close()
    r.flushdb()
    r.close()


def test_a_worker_killed_mid_run_never_runs_the_action_twice(
    settings, fake_slack, kill_env, tmp_path
):
    env, client, broker = kill_env
    import redis as redis_lib

    r = redis_lib.Redis.from_url(broker)
    slack = fake_slack
    slack.hold = True  # holds the answer to the post until released
    use_slack_target(settings, slack)
    env.update(TARGET_HOOK_KIND="slack", TARGET_HOOK_URL=slack.webhook_url)
    request = notify_request(message="flush the checkout cache")
    assert request.target == "hook"
    make_approver("approver")
    workers = Workers(env, tmp_path)
    try:
        first = workers.start("kill-first")
        wait_until(lambda: client.control.ping(timeout=0.5), timeout=60, what="the first worker")

        # Approve from a shell, as an approver without a browser would: it queues on the broker.
        approve = subprocess.run(
            [sys.executable, "manage.py", "approvals", "approve", str(request.pk), "--as", "approver"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert approve.returncode == 0, approve.stderr
        assert "running" in approve.stdout

        # The worker claimed it and is inside the POST when it dies.
        wait_until(slack.arrived.is_set, timeout=60, what="the action to reach the webhook")
        request.refresh_from_db()
        assert request.status == ActionStatus.RUNNING and request.started_at is not None
        first.send_signal(signal.SIGKILL)
        assert first.wait(15) == -signal.SIGKILL
        slack.release.set()
        assert r.hlen("unacked") == 1  # acks_late: the broker still holds the message

        # A new worker takes the unacknowledged message back (short visibility timeout)...
        workers.start("kill-second", visibility_timeout=1)

        def redelivered_result() -> object:
            for key in r.scan_iter("celery-task-meta-*"):
                meta = json.loads(r.get(key))
                if meta.get("status") == "SUCCESS" and meta.get("result") == ActionStatus.RUNNING:
                    return meta
            return None

        # ...and finds it already claimed: a no-op, not a second run.
        wait_until(redelivered_result, timeout=90, what="the redelivered task to be consumed")
        assert r.hlen("unacked") == 0
        assert len(slack.posts) == 1

        # The sweeper (the beat task) says what happened instead of leaving it running.
        wait_until(
            lambda: (
                timezone.now() - ActionRequest.objects.get(pk=request.pk).started_at
                > timedelta(seconds=1.5)
            ),
            what="the claim to be older than EXECUTOR_STALE_AFTER_SECONDS",
        )
        counts = client.send_task("executor.sweep_stale", queue="executor").get(timeout=60)
        assert counts["actions_lost"] == 1
        assert counts["actions_requeued"] == 0
    finally:
        workers.stop_all()
        r.close()

    request.refresh_from_db()
    assert request.status == ActionStatus.FAILED
    assert request.error == WORKER_LOST
    assert request.result == {}
    assert len(slack.posts) == 1  # once, and never again
    assert _succeeded_events(request) == 0
    assert request.incident.timeline.filter(message__contains=WORKER_LOST).count() == 1
