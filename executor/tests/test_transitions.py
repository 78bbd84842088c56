"""The execution's and the action request's transition tables, applied by the one helper."""

import pytest

from executor.choices import (
    ACTION_TRANSITIONS,
    EXECUTION_TRANSITIONS,
    ActionStatus,
    ExecutionStatus,
)
from executor.models import ActionRequest, Execution
from executor.services import execution_mark_failed
from executor.services.common import action_move
from incidents.transitions import IllegalTransition, transition
from runbooks.tests.factories import ready_runbook

pytestmark = pytest.mark.django_db


def _execution_move(execution: Execution, from_status: str, to_status: str) -> bool:
    return transition(
        Execution,
        pk=execution.pk,
        table=EXECUTION_TRANSITIONS,
        from_status=from_status,
        to_status=to_status,
    )


def _action(status: str) -> ActionRequest:
    runbook = ready_runbook()
    return ActionRequest.objects.create(
        runbook=runbook,
        incident=runbook.incident,
        step_id="a1",
        action="alert.notify",
        status=status,
    )


def test_every_status_has_a_row():
    assert set(EXECUTION_TRANSITIONS) == set(ExecutionStatus.values)
    assert set(ACTION_TRANSITIONS) == set(ActionStatus.values)
    for table, values in (
        (EXECUTION_TRANSITIONS, ExecutionStatus.values),
        (ACTION_TRANSITIONS, ActionStatus.values),
    ):
        for targets in table.values():
            assert targets <= set(values)


def test_a_finished_execution_never_runs_again():
    execution = Execution.objects.create(runbook=ready_runbook(), status=ExecutionStatus.DONE)
    with pytest.raises(IllegalTransition, match="Execution cannot move from done to running"):
        _execution_move(execution, ExecutionStatus.DONE, ExecutionStatus.RUNNING)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.DONE


def test_failing_an_execution_that_already_ended_is_a_lost_race():
    execution = Execution.objects.create(runbook=ready_runbook())
    assert _execution_move(execution, ExecutionStatus.RUNNING, ExecutionStatus.DONE)
    assert not execution_mark_failed(execution_id=execution.pk, error="worker lost")
    execution.refresh_from_db()
    assert (execution.status, execution.error) == (ExecutionStatus.DONE, "")


def test_a_rejected_action_can_never_be_approved():
    request = _action(ActionStatus.REJECTED)
    with pytest.raises(IllegalTransition, match="cannot move from rejected to approved"):
        action_move(request, ActionStatus.APPROVED, from_statuses=[ActionStatus.REJECTED])
    request.refresh_from_db()
    assert request.status == ActionStatus.REJECTED


def test_a_proposed_action_cannot_succeed_without_running():
    request = _action(ActionStatus.PROPOSED)
    with pytest.raises(IllegalTransition):
        action_move(request, ActionStatus.SUCCEEDED, from_statuses=[ActionStatus.PROPOSED])


def test_two_approvals_racing_to_approved_one_wins():
    request = _action(ActionStatus.AWAITING_APPROVAL)
    moves = [
        action_move(request, ActionStatus.APPROVED, from_statuses=[ActionStatus.AWAITING_APPROVAL])
        for _ in range(2)
    ]
    assert moves == [True, False]
    request.refresh_from_db()
    assert request.status == ActionStatus.APPROVED
