"""The plain-text results report printed by the management commands."""

import re

from runbooks.models import Runbook

from .choices import ActionStatus
from .models import ActionRequest, CheckRun, Execution
from .policy import approval_reason


def _action_label(request: ActionRequest) -> str:
    if request.status == ActionStatus.BLOCKED:
        return f"BLOCKED - {request.error}"
    if request.status in (ActionStatus.PROPOSED, ActionStatus.AWAITING_APPROVAL):
        needs = approval_reason(request.safety, request.runbook_marked_safe)
        return "UNSAFE - requires approval" if needs else "SAFE"
    return request.get_status_display().upper()


def format_report(runbook: Runbook, execution: Execution | None) -> str:
    """The design's results report, sections apart, then where to find the runbook again."""
    doc = runbook.artifact or {}
    lines = ["=== Runbook Execution Results ==="]
    lines.append(f"Incident Type: {doc.get('incident_type', '?')}")
    lines.append(f"Affected System: {doc.get('affected_system', '?')}")
    lines.append(f"Confidence: {float(doc.get('confidence', 0)) * 100:.1f}%")
    lines.append("")
    lines.append("Hypotheses:")
    lines.extend(f"  - {h}" for h in doc.get("hypotheses", []))
    lines.append("")
    lines.append("Check Results:")
    if execution is None:
        lines.append("  (not run)")
    elif execution.error:
        lines.append(f"  REFUSED: {execution.error}")
    else:
        for run in execution.check_runs.all():
            lines.append(f"  [{run.outcome.upper()}] {run.check_id}: {run.summary}")
    lines.append("")
    lines.append("Recommended Actions:")
    requests = {r.step_id: r for r in runbook.action_requests.all()}
    for step in doc.get("recommended_actions", []):
        request = requests.get(step.get("id"))
        label = _action_label(request) if request else "NOT PROPOSED"
        lines.append(f"  - {step.get('id')}: {step.get('action')} [{label}]")
    lines.append("")
    lines.append(f"Rollback Plan: {doc.get('rollback_plan', '')}")
    lines.append("")
    # Not part of the design's report: what replay_runbook needs, and the provenance.
    lines.append(
        f"Runbook {runbook.pk}: v{runbook.version} by {runbook.get_author_display() or '?'}"
        f" ({runbook.status}), sha256 {runbook.artifact_sha256[:12]}"
        f"; replay: .venv/bin/python manage.py replay_runbook {runbook.pk}"
    )
    return "\n".join(lines)


# Durations differ from run to run ("in 66 ms", "in 69 ms"): timing jitter, not a change.
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?ms\b")


def _steady(summary: str) -> str:
    """A check summary without its durations, for telling real changes from jitter."""
    return _DURATION.sub("…", summary)


def diff_outcomes(before: Execution | None, after: Execution) -> list[str]:
    """What changed between two executions of the same runbook, check by check."""
    if before is None:
        return ["(no earlier run to compare with)"]
    old: dict[str, CheckRun] = {c.check_id: c for c in before.check_runs.all()}
    lines = []
    for run in after.check_runs.all():
        prev = old.pop(run.check_id, None)
        if prev is None:
            lines.append(f"  + {run.check_id}: new, [{run.outcome.upper()}]")
        elif prev.outcome != run.outcome:
            lines.append(
                f"  ~ {run.check_id}: {prev.outcome.upper()} → {run.outcome.upper()}: {run.summary}"
            )
        elif _steady(prev.summary) != _steady(run.summary):
            lines.append(
                f"  ~ {run.check_id}: [{run.outcome.upper()}] {prev.summary} → {run.summary}"
            )
        else:
            lines.append(f"  = {run.check_id}: [{run.outcome.upper()}] unchanged")
    lines.extend(f"  - {cid}: no longer run" for cid in old)
    return lines
