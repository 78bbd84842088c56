"""The per-minute budget of Claude generations, shared by every worker through the database."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents.choices import TimelineKind
from runbooks.choices import RunbookAuthor, RunbookStatus
from runbooks.generation import model_call_take
from runbooks.services import runbook_generate
from runbooks.tests.conftest import EVERY_KIND
from testing.fakes.anthropic import fake_claude, recorded

from .factories import RunbookFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def claude_settings(settings):
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = None
    settings.ANTHROPIC_MAX_RETRIES = 0
    settings.EXECUTOR_TARGETS = dict(EVERY_KIND)
    return settings


def test_the_budget_is_per_minute(settings):
    settings.ANTHROPIC_CALLS_PER_MINUTE = 2
    t = datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)
    assert [model_call_take(now=t) for _ in range(3)] == [True, True, False]
    assert model_call_take(now=t + timedelta(seconds=50)) is False  # the same minute
    assert model_call_take(now=t + timedelta(minutes=1)) is True  # the next one
    settings.ANTHROPIC_CALLS_PER_MINUTE = 0  # no limit
    assert all(model_call_take(now=t) for _ in range(5))


def test_past_the_budget_the_offline_planner_answers_and_the_timeline_says_why(claude_settings):
    claude_settings.ANTHROPIC_CALLS_PER_MINUTE = 1
    first, second = RunbookFactory(), RunbookFactory()
    # One recorded answer (and its repair, if any): a second Claude call would overrun.
    with fake_claude([recorded("athena_valid"), recorded("athena_valid")]) as fake:
        asked = runbook_generate(runbook_id=first.pk)
        calls = len(fake.requests)
        spared = runbook_generate(runbook_id=second.pk)
    assert asked.author == RunbookAuthor.CLAUDE and calls >= 1
    assert len(fake.requests) == calls  # no request for the second one
    assert spared.status == RunbookStatus.READY
    assert spared.author == RunbookAuthor.OFFLINE
    fallback = spared.incident.timeline.get(kind=TimelineKind.GENERATION_FALLBACK)
    assert "budget of 1 Claude generations a minute is spent" in fallback.message
    assert not asked.incident.timeline.filter(kind=TimelineKind.GENERATION_FALLBACK).exists()
