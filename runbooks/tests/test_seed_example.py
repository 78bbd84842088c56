"""The seed example, end to end: Claude (recorded) plans, real PostgreSQL answers the checks."""

import io
import os
import re

import psycopg
import pytest
from django.core.management import call_command

from runbooks.models import Runbook
from testing.fakes.anthropic import fake_claude, recorded

SEED_TEXT = (
    "Our Athena queries for attendance analytics are timing out since this morning. "
    "Users report 30+ second waits. No recent deployments."
)


@pytest.fixture
def athena_db(pg_url, settings):
    """A scratch PostgreSQL database with a partitioned attendance_facts table."""
    name = f"ir_seed_athena_{os.getpid()}"  # concurrent sessions each drop their own
    base = pg_url.rsplit("/", 1)[0]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    url = f"{base}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE attendance_facts (day date NOT NULL, student int, present bool)"
            " PARTITION BY RANGE (day)"
        )
        for month in (1, 2, 3):
            conn.execute(
                f"CREATE TABLE attendance_facts_2026_{month:02d} PARTITION OF attendance_facts "
                f"FOR VALUES FROM ('2026-{month:02d}-01') TO ('2026-{month + 1:02d}-01')"
            )
        conn.execute(
            "INSERT INTO attendance_facts SELECT DATE '2026-01-01' + (i % 90), i, i % 7 <> 0 "
            "FROM generate_series(1, 3000) AS i"
        )
        conn.execute("ANALYZE attendance_facts")
    settings.EXECUTOR_TARGETS = {"athena": {"kind": "postgres", "url": url}}
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.ANTHROPIC_API_KEY = "test-key"
    yield url
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.django_db(transaction=True)
def test_seed_example_report_comes_from_real_postgres(athena_db):
    out = io.StringIO()
    with fake_claude([recorded("athena_valid")]) as fake:
        call_command(
            "declare_incident",
            SEED_TEXT,
            "--severity",
            "SEV2",
            "--service",
            "athena",
            stdout=out,
            stderr=io.StringIO(),
        )
    assert len(fake.requests) == 1
    report = out.getvalue()
    lines = report.splitlines()
    assert lines[0] == "=== Runbook Execution Results ==="
    assert "Incident Type: performance_degradation" in lines
    assert "Affected System: athena" in lines
    assert "Confidence: 82.0%" in lines
    assert any(
        line.startswith("  - partition explosion in attendance_facts table") for line in lines
    )
    [check] = [line for line in lines if "check_partitions" in line]
    assert check.startswith("  [OK] check_partitions: Table attendance_facts: ")
    assert re.search(r"\b3 partitions\b", check), check  # counted by PostgreSQL, not made up
    assert "  - recompute_stats: database.analyze_table [SAFE]" in lines
    assert "  - kill_query: database.kill_query [UNSAFE - requires approval]" in lines
    assert any(line.startswith("Rollback Plan: ANALYZE") for line in lines)

    runbook = Runbook.objects.get()
    assert runbook.author == "claude"
    assert runbook.input_tokens > 0 and runbook.output_tokens > 0


@pytest.mark.django_db(transaction=True)
def test_replay_reruns_the_stored_checks_against_current_targets(athena_db):
    with fake_claude([recorded("athena_valid")]):
        call_command(
            "declare_incident",
            SEED_TEXT,
            "--service",
            "athena",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    runbook = Runbook.objects.get()
    with psycopg.connect(athena_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE attendance_facts_2026_04 PARTITION OF attendance_facts "
            "FOR VALUES FROM ('2026-04-01') TO ('2026-05-01')"
        )
    out = io.StringIO()
    # No Claude here: a call would hit the overrun guard of an empty fake.
    with fake_claude([]) as fake:
        call_command("replay_runbook", str(runbook.pk), stdout=out)
        call_command("replay_runbook", runbook.artifact_key, stdout=io.StringIO())
    assert fake.requests == []
    text = out.getvalue()
    assert "Changes since the first run:" in text
    [changed] = [line for line in text.splitlines() if line.startswith("  ~ check_partitions")]
    assert "4 partitions" in changed
    assert runbook.executions.count() == 3
