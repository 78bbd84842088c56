"""The offline runbook driven by the evidence: the diagnosis leads the hypotheses, sets
the confidence and chooses the remediation (a suspected deploy is rolled back to the
version its change event names; capacity is scaled). Steps with no target are listed
as not available, never dropped silently."""

import re

from ..diagnosis import Diagnosis, diagnose
from .offered import allowed_steps
from .steps import act, step

# deploy.rollback only takes a full image reference; a bare version cannot be one.
_IMAGE = re.compile(r"^[a-z0-9.-]+(?::\d+)?/[a-z0-9._/-]+[:@][A-Za-z0-9._:-]+$")
_TARGET_KIND = {"deploy.rollback": "fly", "service.scale": "fly", "service.restart": "fly"}


def _remedies(diagnosis: Diagnosis, service: str) -> list[dict]:
    top = diagnosis.top
    if top is None or diagnosis.status != "diagnosed":
        return []
    cites = ", ".join(top.evidence) or "no evidence"
    if top.category == "deployment_issue":
        change = diagnosis.suspect_change or {}
        previous = str(change.get("previous_version") or "")
        params = {"image": previous} if _IMAGE.match(previous) else {}
        to = f" to {previous}" if previous else " to the previous release"
        return [
            act(
                "rollback_suspect_deploy",
                "deploy.rollback",
                params,
                safe=False,
                rationale=f"Roll back {change.get('version') or 'the suspect deploy'}{to}: "
                f"it started just before the metrics moved ({cites}).",
            )
        ]
    if top.category == "capacity_problem":
        return [
            act(
                "scale_up",
                "service.scale",
                {"count": 4},
                safe=False,
                rationale=f"Add capacity: saturation or traffic is above what it serves ({cites}).",
            )
        ]
    if top.category == "code_bug":
        return [
            act(
                "restart_service",
                "service.restart",
                {},
                safe=False,
                rationale=f"Clear a stuck state while the defect is fixed ({cites}).",
            )
        ]
    return []


def _checks_for_more_evidence(service: str) -> list[dict]:
    """With nothing decisive, look for evidence: health and the recent error lines."""
    checks = [step("check_health", "http.health_check", {})]
    if service:
        checks.append(
            step(
                "search_recent_errors",
                "logs.search",
                {"service": service, "pattern": "error", "lookback_minutes": 120},
            )
        )
    return checks


def apply_evidence(
    document: dict, *, evidence: list[dict], text: str, service: str, offered: dict
) -> dict:
    """`document` (the text-only offline runbook) revised by the evidence's diagnosis."""
    diagnosis = diagnose(evidence=evidence, text=text, service=service)
    unavailable: list[str] = []
    remedies = []
    for remedy in _remedies(diagnosis, service):
        if remedy["action"] not in offered or not offered[remedy["action"]]:
            kind = _TARGET_KIND.get(remedy["action"], "matching")
            unavailable.append(
                f"{remedy['action']} not available: no {kind} target for "
                f"{service or 'this service'} (add one in the catalog)"
            )
            continue
        remedies += allowed_steps([remedy], offered)
    diagnosis.unavailable = unavailable
    lines = []
    if diagnosis.status == "insufficient_evidence":
        lines.append(
            "Insufficient evidence: nothing gathered points clearly at a cause; "
            "the checks look for some."
        )
    for h in diagnosis.hypotheses:
        cites = f" [evidence: {', '.join(h.evidence)}]" if h.evidence else ""
        lines.append(f"{h.category}: {h.statement}{cites}"[:500])
    lines += [u[:500] for u in unavailable]
    revised = dict(document)
    revised["hypotheses"] = (lines + list(document["hypotheses"]))[:10]
    if diagnosis.status == "diagnosed" and diagnosis.top:
        revised["confidence"] = diagnosis.top.confidence
        revised["affected_system"] = diagnosis.top.component[:200] or document["affected_system"]
    else:
        revised["confidence"] = min(document["confidence"], 0.3)
        if not document["checks"]:
            # The text named nothing to check either: look for evidence.
            revised["checks"] = allowed_steps(_checks_for_more_evidence(service), offered)
    if remedies:
        ids = {a["id"] for a in remedies}
        rest = [a for a in document["recommended_actions"] if a["id"] not in ids]
        # The remedy the diagnosis chose replaces the text's guesses of the same kind.
        chosen = {a["action"] for a in remedies}
        rest = [a for a in rest if a["action"] not in chosen and a["action"] != "service.restart"]
        revised["recommended_actions"] = (remedies + rest)[:20]
        undo = "; ".join(
            f"{a['id']}: "
            + (
                "redeploy the version that was rolled back (roll forward) once fixed"
                if a["action"] == "deploy.rollback"
                else "scale back to the previous count once load subsides"
                if a["action"] == "service.scale"
                else "nothing to undo (a restart)"
            )
            for a in remedies
        )
        revised["rollback_plan"] = (undo + ". " + document["rollback_plan"])[:2000]
    if unavailable:
        revised["rollback_plan"] = (revised["rollback_plan"] + " " + " ".join(unavailable))[:2000]
    revised["diagnosis"] = diagnosis.as_dict()
    return revised
