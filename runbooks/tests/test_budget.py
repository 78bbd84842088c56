"""The per-minute budget of Claude generations, shared by every worker through Redis or,
without it, the database."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.choices import TimelineKind
from runbooks.choices import RunbookAuthor, RunbookStatus
from runbooks.generation import model_call_take
from runbooks.models import ModelCallBudget
from runbooks.services import runbook_generate
from runbooks.tests.conftest import EVERY_KIND
from testing.fakes.anthropic import fake_claude, recorded
from testing.services import dead_redis_url

from .factories import RunbookFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def claude_settings(settings):
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = None
    settings.ANTHROPIC_MAX_RETRIES = 0
    settings.EXECUTOR_TARGETS = dict(EVERY_KIND)
    return settings


@pytest.fixture(params=["database", "redis"])
def budget_store(request, settings) -> str:
    """Where the budget is counted: the database (no REDIS_URL) or Redis."""
    settings.REDIS_URL = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return request.param


def test_the_budget_is_per_minute(settings, budget_store):
    settings.ANTHROPIC_CALLS_PER_MINUTE = 2
    t = datetime(2030, 1, 1, 12, 0, 5, tzinfo=UTC)
    assert [model_call_take(now=t) for _ in range(3)] == [True, True, False]
    assert model_call_take(now=t + timedelta(seconds=50)) is False  # the same minute
    assert model_call_take(now=t + timedelta(minutes=1)) is True  # the next one
    settings.ANTHROPIC_CALLS_PER_MINUTE = 0  # no limit
    assert all(model_call_take(now=t) for _ in range(5))
    # Redis counted it all: not one row in the database.
    assert ModelCallBudget.objects.exists() is (budget_store == "database")


def test_with_redis_a_call_costs_no_sql_statement(settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.ANTHROPIC_CALLS_PER_MINUTE = 5
    with CaptureQueriesContext(connection) as queries:
        assert model_call_take() is True
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_racing_workers_never_take_more_than_the_budget(settings, budget_store):
    if budget_store == "database" and connection.vendor == "sqlite":
        # The test database is SQLite in memory, whose table locks make racing threads
        # fail rather than wait; the embedded default is one process anyway.
        pytest.skip("racing workers on the database counter need PostgreSQL")
    settings.ANTHROPIC_CALLS_PER_MINUTE = 5
    t = datetime(2031, 6, 1, 9, 30, tzinfo=UTC)
    start = threading.Barrier(12)
    taken: list[bool] = []

    def worker() -> None:
        start.wait()
        try:
            taken.append(model_call_take(now=t))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [False] * 7 + [True] * 5


def test_a_redis_that_does_not_answer_counts_in_the_database(settings, caplog):
    settings.REDIS_URL = dead_redis_url()
    settings.ANTHROPIC_CALLS_PER_MINUTE = 1
    t = datetime(2032, 3, 1, 8, 0, tzinfo=UTC)
    assert [model_call_take(now=t) for _ in range(2)] == [True, False]
    assert ModelCallBudget.objects.get(minute=t).calls == 1
    assert "Redis did not answer" in caplog.text


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
