"""The runbook version's transition table, applied by the one helper."""

import pytest

from incidents.tests.factories import IncidentFactory
from incidents.transitions import IllegalTransition, transition
from runbooks.choices import RUNBOOK_TRANSITIONS, RunbookStatus
from runbooks.models import Runbook
from runbooks.services import runbook_mark_failed, runbook_requeue

pytestmark = pytest.mark.django_db


def _runbook(status: str) -> Runbook:
    return Runbook.objects.create(incident=IncidentFactory(), version=1, status=status)


def _move(runbook: Runbook, from_status, to_status: str) -> bool:
    return transition(
        Runbook,
        pk=runbook.pk,
        table=RUNBOOK_TRANSITIONS,
        from_status=from_status,
        to_status=to_status,
    )


def test_every_status_has_a_row_and_the_ends_are_final():
    assert set(RUNBOOK_TRANSITIONS) == set(RunbookStatus.values)
    for final in (RunbookStatus.READY, RunbookStatus.INVALID, RunbookStatus.FAILED):
        assert RUNBOOK_TRANSITIONS[final] == frozenset()


def test_a_ready_version_never_moves_again():
    runbook = _runbook(RunbookStatus.READY)
    with pytest.raises(IllegalTransition, match="Runbook cannot move from ready to generating"):
        _move(runbook, RunbookStatus.READY, RunbookStatus.GENERATING)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.READY


def test_a_queued_version_cannot_skip_generation():
    runbook = _runbook(RunbookStatus.QUEUED)
    with pytest.raises(IllegalTransition):
        _move(runbook, RunbookStatus.QUEUED, RunbookStatus.READY)


def test_two_claims_one_winner():
    runbook = _runbook(RunbookStatus.QUEUED)
    assert _move(runbook, RunbookStatus.QUEUED, RunbookStatus.GENERATING)
    assert not _move(runbook, RunbookStatus.QUEUED, RunbookStatus.GENERATING)  # lost race


def test_a_retry_requeues_only_a_generating_version():
    runbook = _runbook(RunbookStatus.GENERATING)
    assert runbook_requeue(runbook_id=runbook.pk)
    runbook.refresh_from_db()
    assert runbook.status == RunbookStatus.QUEUED
    assert not runbook_requeue(runbook_id=runbook.pk)  # already queued: nothing to do


def test_marking_failed_after_it_became_ready_is_a_lost_race_not_an_error():
    runbook = _runbook(RunbookStatus.GENERATING)
    assert _move(runbook, RunbookStatus.GENERATING, RunbookStatus.READY)
    failed = runbook_mark_failed(runbook_id=runbook.pk, error="worker lost")
    assert failed.status == RunbookStatus.READY
    assert not failed.incident.timeline.filter(kind="runbook_failed").exists()
