"""The offline planner's entry point: classify the text, run the playbook, assemble the runbook."""

from typing import Any

from .evidence_plan import apply_evidence
from .facts import affected_system, extract_facts, matches
from .offered import allowed_steps, offered_steps
from .playbooks import GENERIC, SCENARIOS, Scenario


def score(scenario: Scenario, words: list[str]) -> tuple[float, set[str]]:
    """The summed weights of the scenario's keywords found in `words`, and those keywords."""
    total = 0.0
    found = set()
    for phrase, weight in scenario.keywords.items():
        if matches(words, phrase):
            total += weight
            found.add(phrase)
    return total, found


def classify(words: list[str]) -> tuple[Scenario, float, dict[str, float], set[str]]:
    """(best scenario, or GENERIC when nothing matches; its score; all scores; its keywords)."""
    scored = {s.name: score(s, words) for s in SCENARIOS}
    scores = {name: points for name, (points, _) in scored.items()}
    best = max(SCENARIOS, key=lambda s: scores[s.name])  # first wins ties
    if scores[best.name] <= 0:
        return GENERIC, 0.0, scores, set()
    return best, scores[best.name], scores, scored[best.name][1]


def confidence(best: float, scores: dict[str, float]) -> float:
    """0.3 for a bare guess up to 0.8 for a strong match; less when another scenario is close."""
    value = 0.3 + 0.5 * min(1.0, best / 8.0)
    runner_up = sorted(scores.values(), reverse=True)[1] if len(scores) > 1 else 0.0
    if best and runner_up >= 0.75 * best:
        value -= 0.1
    return round(min(0.8, max(0.3, value)), 2)


def plan_offline(*, incident: Any, context: dict | None = None) -> dict:
    """A contract-valid runbook for `incident`, from its text alone. Deterministic."""
    f = extract_facts(incident, context)
    scenario, best, scores, f.mentions = classify(f.words)
    f.system = affected_system(f.text, f.service, scenario.default_system)

    plan = scenario.build(f)
    offered = offered_steps(f.service)
    document = {
        "incident_type": scenario.incident_type,
        "affected_system": f.system[:200],
        "confidence": confidence(best, scores),
        "hypotheses": [h[:500] for h in plan.hypotheses[:10]],
        "checks": allowed_steps(plan.checks, offered),
        "recommended_actions": allowed_steps(plan.actions, offered),
        "rollback_plan": plan.rollback[:2000],
    }
    evidence = (context or {}).get("evidence")
    if evidence is None:
        return document
    return apply_evidence(
        document, evidence=evidence, text=f.text, service=f.service, offered=offered
    )
