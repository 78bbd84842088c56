"""What the management commands print: the service named in the text, help, steady diffs."""

import io
import logging

import pytest
from django.core.management import call_command

from executor.choices import CheckOutcome
from executor.models import CheckRun, Service
from executor.report import diff_outcomes
from executor.tests.factories import ExecutionFactory


@pytest.mark.django_db(transaction=True)
def test_declare_without_service_takes_the_catalog_service_the_text_names(settings, caplog):
    settings.ANTHROPIC_API_KEY = ""
    Service.objects.create(name="checkout")
    Service.objects.create(name="search")
    out, err = io.StringIO(), io.StringIO()
    with caplog.at_level(logging.INFO):
        call_command(
            "declare_incident",
            "Error rate spike on checkout after the deploy",
            stdout=out,
            stderr=err,
        )
    assert "Affected System: checkout" in out.getvalue().splitlines()
    assert "Service: checkout (named in the text)" in err.getvalue()
    # Celery's per-task lines are not part of a command's output.
    assert not [
        r for r in caplog.records if r.name == "celery.app.trace" and "succeeded" in r.getMessage()
    ]


@pytest.mark.parametrize("verb", ["approve", "reject", "reask"])
def test_every_approvals_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit):
        call_command("approvals", verb, "--help")
    text = capsys.readouterr().out
    assert {"approve": "approve a pending", "reject": "with a reason", "reask": "fresh dry-run"}[
        verb
    ].lower() in text.lower()


@pytest.mark.django_db
def test_replay_diff_ignores_timing_jitter_and_reports_real_changes():
    before, after = ExecutionFactory(), ExecutionFactory()
    for execution, ms, status in ((before, 66, 200), (after, 69, 503)):
        CheckRun.objects.create(
            execution=execution,
            check_id="health",
            action="http.health_check",
            outcome=CheckOutcome.OK,
            summary=f"GET http://app/healthz → 200 in {ms} ms",
        )
        CheckRun.objects.create(
            execution=execution,
            check_id="api",
            action="http.health_check",
            outcome=CheckOutcome.OK,
            summary=f"GET http://app/api → {status} in {ms} ms",
        )
    lines = diff_outcomes(before, after)
    assert "  = health: [OK] unchanged" in lines
    assert any(line.startswith("  ~ api:") and "503" in line for line in lines)


def test_the_admin_shows_dates_as_the_app_does():
    from datetime import UTC, datetime

    from django.utils import formats

    moment = datetime(2026, 12, 1, 5, 10, tzinfo=UTC)
    assert formats.date_format(moment, "DATETIME_FORMAT") == "2026-12-01 05:10 UTC"
