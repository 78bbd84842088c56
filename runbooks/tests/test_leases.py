"""The generating worker's lease: claimed with the version, renewed while it works, and
swept once a dead worker stops renewing it; a worker that was taken over cannot finish."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from executor.models import Execution
from incidents.choices import TimelineKind
from runbooks import services
from runbooks.choices import RunbookStatus
from runbooks.generation import generate_runbook_document
from runbooks.models import Runbook
from runbooks.services import runbook_generate, runbook_sweep_leases
from testing.waiting import wait_until

from .factories import RunbookFactory


def _expire(runbook: Runbook) -> None:
    Runbook.objects.filter(pk=runbook.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def _generating(runbook: Runbook, attempts: int = 1) -> Runbook:
    Runbook.objects.filter(pk=runbook.pk).update(
        status=RunbookStatus.GENERATING,
        attempts=attempts,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    runbook.refresh_from_db()
    return runbook


@pytest.mark.django_db
def test_the_claim_takes_a_lease_and_counts_the_attempt(settings):
    settings.RUNBOOK_LEASE_SECONDS = 30
    runbook = RunbookFactory()
    before = timezone.now()
    assert services.runbook_claim(Runbook.objects.get(pk=runbook.pk)) == 1
    assert services.runbook_claim(Runbook.objects.get(pk=runbook.pk)) is None  # one winner
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.GENERATING and runbook.attempts == 1
    assert runbook.lease_expires_at >= before + timedelta(seconds=29)


@pytest.mark.django_db(transaction=True)
def test_an_expired_lease_is_queued_again_and_generated(settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.RUNBOOK_MAX_ATTEMPTS = 3
    runbook = _generating(RunbookFactory())
    live = _generating(RunbookFactory(), attempts=1)
    Runbook.objects.filter(pk=live.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )

    # Eager: the re-queued version is generated as soon as the sweep commits.
    assert runbook_sweep_leases() == {"requeued": 1, "failed": 0}
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY, runbook.error
    assert runbook.attempts == 2 and runbook.lease_expires_at is None
    again = runbook.incident.timeline.get(kind=TimelineKind.RUNBOOK_QUEUED)
    assert again.payload["attempt"] == 2
    assert "queued again (attempt 2)" in again.message
    assert "stopped renewing its lease" in again.message
    live.refresh_from_db()
    assert live.status == RunbookStatus.GENERATING  # its worker renews: left alone


@pytest.mark.django_db(transaction=True)
def test_after_the_last_attempt_it_fails_and_says_why(settings):
    settings.RUNBOOK_MAX_ATTEMPTS = 3
    runbook = _generating(RunbookFactory(), attempts=3)
    assert runbook_sweep_leases() == {"requeued": 0, "failed": 1}
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.FAILED
    assert "stopped renewing its lease, 3 times" in runbook.error
    failed = runbook.incident.timeline.get(kind=TimelineKind.RUNBOOK_FAILED)
    assert "3 times; gave up" in failed.message
    assert runbook_sweep_leases() == {"requeued": 0, "failed": 0}


@pytest.mark.django_db
def test_a_worker_that_was_taken_over_cannot_finish(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The sweep queues the version again and another worker claims it while the first one
    still generates: the first one's result is thrown away, the new claim stands."""
    settings.ANTHROPIC_API_KEY = ""
    runbook = RunbookFactory()

    def slow_generation(*, incident, context):
        _expire(runbook)
        assert runbook_sweep_leases()["requeued"] == 1
        assert services.runbook_claim(Runbook.objects.get(pk=runbook.pk)) == 2  # the second worker
        return generate_runbook_document(incident=incident, context=context)

    monkeypatch.setattr(services, "generate_runbook_document", slow_generation)
    with django_capture_on_commit_callbacks(execute=True) as after_commit:
        result = runbook_generate(runbook_id=runbook.pk)
    assert result.status == RunbookStatus.GENERATING and result.attempts == 2
    assert not runbook.incident.timeline.filter(kind=TimelineKind.RUNBOOK_READY).exists()
    # Nor did the hand-off take effect (what commit ran): no checks ran for its result.
    assert after_commit  # the sweep's requeue, run
    assert not Execution.objects.filter(runbook_id=runbook.pk).exists()
    # Nor may it mark the version failed.
    services.runbook_mark_failed(runbook_id=runbook.pk, error="boom", attempt=1)
    assert Runbook.objects.get(pk=runbook.pk).status == RunbookStatus.GENERATING


def _outlive_the_first_lease(runbook: Runbook, seen: dict) -> None:
    """Wait, as a slow step would, until the heartbeat has renewed the lease and the first
    lease has passed; then sweep, which must find nothing to take over."""
    first = Runbook.objects.get(pk=runbook.pk).lease_expires_at
    wait_until(
        lambda: (
            Runbook.objects.get(pk=runbook.pk).lease_expires_at > first + timedelta(seconds=0.5)
        ),
        timeout=10,
        what="the lease to be renewed",
    )
    wait_until(lambda: timezone.now() > first, timeout=10, what="the first lease to pass")
    seen["swept"] = runbook_sweep_leases()


# Generating, and storing the artifact (an object store's first client, its retries):
# either can outlive the lease, and the version must stay this worker's, not be
# generated a second time by another.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("slow", ["generate_runbook_document", "artifact_store"])
def test_the_heartbeat_renews_the_lease_while_the_worker_is_slow(settings, monkeypatch, slow):
    settings.ANTHROPIC_API_KEY = ""
    settings.RUNBOOK_LEASE_SECONDS = 1.5  # renewed every 0.5 s
    runbook = RunbookFactory()
    seen: dict = {}
    real = getattr(services, slow)

    def slowed(**kwargs):
        _outlive_the_first_lease(runbook, seen)
        return real(**kwargs)

    monkeypatch.setattr(services, slow, slowed)
    result = runbook_generate(runbook_id=runbook.pk)
    assert seen["swept"] == {"requeued": 0, "failed": 0}
    assert result.status == RunbookStatus.READY and result.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_one_thread_renews_every_lease_held_and_stops_at_the_block_end():
    """Two generations at once share the process's heartbeat thread: neither starts a
    thread of its own, both leases are renewed, and a lease taken over is let go."""
    import threading

    from runbooks.leases import LeaseHeartbeat

    first, second = _generating(RunbookFactory()), _generating(RunbookFactory())
    sessions = _other_sessions()
    with LeaseHeartbeat(runbook_id=first.pk, attempt=1, seconds=0.3):
        threads = {t.ident for t in threading.enumerate()}
        with LeaseHeartbeat(runbook_id=second.pk, attempt=1, seconds=0.3) as beat:
            assert {t.ident for t in threading.enumerate()} == threads  # no thread per lease
            now = timezone.now()
            for runbook in (first, second):
                wait_until(
                    lambda r=runbook: Runbook.objects.get(pk=r.pk).lease_expires_at > now,
                    timeout=10,
                    what="both leases to be renewed",
                )
            # Taken over: the next renewal finds another attempt, and gives the lease up.
            Runbook.objects.filter(pk=second.pk).update(attempts=2)
            wait_until(beat.lost.is_set, timeout=10, what="the lost lease to be noticed")
        renewed = Runbook.objects.get(pk=first.pk).lease_expires_at
        wait_until(
            lambda: Runbook.objects.get(pk=first.pk).lease_expires_at > renewed,
            timeout=10,
            what="the first lease to be renewed on",
        )
    # Once its block has ended, a lease is renewed no more.
    ended = Runbook.objects.get(pk=first.pk).lease_expires_at
    wait_until(lambda: timezone.now() > ended, timeout=10, what="the lease to run out")
    assert Runbook.objects.get(pk=first.pk).lease_expires_at == ended
    if sessions is not None:  # and the thread holds no connection while no lease is held
        wait_until(lambda: _other_sessions() == sessions, timeout=10, what="its session to end")


def _other_sessions() -> int | None:
    """PostgreSQL: the sessions on this database other than this thread's."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]
