"""The seed design's runbook contract, as written, through the Claude path and into the report."""

import io
import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from django.core.management import call_command

from executor.models import Service, Target
from runbooks.models import Runbook
from runbooks.validation import validate_runbook
from testing.fakes.anthropic import fake_claude, message
from testing.servers import handler_server

EXAMPLE = Path(__file__).parent / "seed" / "example_runbook.json"
SEED_TEXT = (
    "Our Athena queries for attendance analytics are timing out since this morning. "
    "Users report 30+ second waits. No recent deployments."
)

# The design's layout: its labels, a blank line between sections. The last line is
# this project's own: the runbook id replay_runbook takes.
EXPECTED = """\
=== Runbook Execution Results ===
Incident Type: performance_degradation
Affected System: athena
Confidence: 82.0%

Hypotheses:
  - Partition explosion in attendance_facts: queries scan far more partitions than before
  - Long-running analytics queries hold resources and queue the dashboard queries
  - A cold or flushed result cache sends every dashboard query to the database

Check Results:
  [BLOCKED] check_slow_queries: no target configured for this step (needs postgres)
  [BLOCKED] check_query_latency: no target configured for this step (needs prometheus)
  [BLOCKED] check_timeouts: no target configured for this step (needs loki)
  [OK] check_health: {health}

Recommended Actions:
  - kill_long_query: database.kill_query [BLOCKED - no target configured for this step (needs postgres)]
  - clear_result_cache: cache.invalidate [SAFE]
  - restart_service: service.restart [UNSAFE - requires approval]
  - notify_team: alert.notify [SAFE]

Rollback Plan: Cancelled queries are not undone: their clients retry them. The cache refills on the next reads. A restart cannot be rolled back; if it does not help, scale back to the previous machine count.

Runbook {pk}: v1 by Claude (ready), sha256 {sha}; replay: .venv/bin/python manage.py replay_runbook {pk}"""


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b'{"status": "ok"}' if self.path == "/healthz" else b"not found"
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def example_text(base_url: str) -> str:
    return EXAMPLE.read_text().replace("ATHENA_URL", base_url)


@pytest.fixture
def athena(settings):
    """Catalog service athena: its own web, cache and Fly.io targets, and a Slack channel."""
    settings.EXECUTOR_DEMO_TARGETS = False
    settings.EXECUTOR_TARGETS = {}
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.SLACK_CHANNEL = "#data-oncall"
    with handler_server(Healthy) as (_, url):
        web = Target.objects.create(name="athena-web", kind="http", base=url)
        cache = Target.objects.create(
            name="athena-cache", kind="redis", base="redis://127.0.0.1:9/0"
        )
        fly = Target.objects.create(name="athena-fly", kind="fly", base="athena")
        service = Service.objects.create(name="athena")
        service.targets.set([web, cache, fly])
        yield url


def test_the_example_runbook_is_valid_as_written():
    doc = json.loads(example_text("http://athena.internal"))
    assert "rationale" not in json.dumps(doc)
    assert validate_runbook(doc) == []


@pytest.mark.django_db(transaction=True)
def test_the_seed_example_prints_the_designs_report(athena):
    out = io.StringIO()
    with fake_claude([message(example_text(athena))]) as fake:
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
    assert len(fake.requests) == 1  # no repair round: the contract was accepted as written
    runbook = Runbook.objects.get()
    assert runbook.author == "claude"
    report = out.getvalue().rstrip("\n")
    health = re.search(r"\[OK\] check_health: (.*)", report)
    assert health, report
    assert re.fullmatch(r"GET http://127\.0\.0\.1:\d+/healthz → 200 in \d+ ms", health[1]), health[
        1
    ]
    assert report == EXPECTED.format(
        health=health[1], pk=runbook.pk, sha=runbook.artifact_sha256[:12]
    )
    # The seed's names were mapped onto the registry's own, with the same checks.
    params = {r.step_id: r.params for r in runbook.action_requests.all()}
    assert params["clear_result_cache"] == {"pattern": "attendance:*"}
    assert params["restart_service"] == {"target": "athena-fly"}
    assert params["notify_team"]["channel"] == "#data-oncall"
