"""The offline writer: a plain, blameless draft built only from the facts."""

from incidents.choices import severity_info

from .facts import humanize


def _bullets(lines: list[str], empty: str) -> str:
    return "\n".join(f"- {line}" for line in lines) if lines else empty


def action_items(facts: dict) -> list[dict]:
    """Follow-ups the data itself suggests: failed steps, slow acknowledgement, silence."""
    items: list[dict] = []
    incident, times = facts["incident"], facts["times"]
    diagnosis = facts["diagnosis"]
    for action in facts["actions"]:
        if action["status"] in ("failed", "blocked", "expired"):
            items.append(
                {
                    "title": f"Find out why {action['step_id']} ({action['action']}) "
                    f"{action['status']} and make it dependable",
                    "priority": "P2",
                }
            )
    for step in facts["resolving_actions"]:
        items.append({"title": f"Decide whether {step} should run automatically", "priority": "P3"})
    cadence_s = severity_info(incident["severity"]).update_every_minutes * 60
    tta = times["time_to_acknowledge_s"]
    if tta is not None and tta > cadence_s:
        items.append(
            {
                "title": f"Acknowledgement took {humanize(tta)}: review paging for "
                f"{incident['severity']} on {incident['service'] or 'this service'}",
                "priority": "P2",
            }
        )
    if incident["severity"] in ("SEV1", "SEV2") and not facts["customer_facing"]:
        items.append(
            {
                "title": "Agree when a customer-facing notice is needed for this kind of incident",
                "priority": "P3",
            }  # fmt: skip
        )
    if diagnosis["hypotheses"]:
        items.append(
            {
                "title": f"Prevent a recurrence: {diagnosis['hypotheses'][0][:150]}",
                "priority": "P1" if incident["severity"] in ("SEV1", "SEV2") else "P2",
            }
        )
    return items[:15]


def write(facts: dict) -> dict:
    """A document valid against the postmortem schema."""
    incident, times, diagnosis = facts["incident"], facts["times"], facts["diagnosis"]
    service = incident["service"] or "the affected service"
    hypotheses = diagnosis["hypotheses"]
    category = diagnosis["incident_type"] or "unknown"
    leading = hypotheses[0] if hypotheses else "Not established yet: fill in after review."
    updates = facts["customer_updates"]
    impact = "\n".join(
        [
            f"- Severity: {incident['severity']}",
            f"- Services: {', '.join(facts['services']) or 'none recorded'}",
            f"- Alerts: {', '.join(facts['alerts'][:10]) or 'none (declared by a person)'}",
            f"- Time to detect: {humanize(times['time_to_detect_s'])}",
            f"- Time to acknowledge: {humanize(times['time_to_acknowledge_s'])}",
            f"- Time to mitigate: {humanize(times['time_to_mitigate_s'])}",
            f"- Time to resolve: {humanize(times['time_to_resolve_s'])}",
            f"- Customer-facing: {'yes' if facts['customer_facing'] else 'no'}"
            + (f" ({len(updates)} published notice(s))" if updates else ""),
        ]
        + [f"  - {u['at'][:16].replace('T', ' ')}: {u['body'][:300]}" for u in updates]
    )
    succeeded = [a for a in facts["actions"] if a["status"] == "succeeded"]
    went_well = [f"{a['step_id']} ({a['action']}) succeeded: {a['summary']}" for a in succeeded]
    if diagnosis["runbook_version"]:
        went_well.append(
            f"A runbook (v{diagnosis['runbook_version']}) was ready to guide the response."
        )
    improve = [
        f"{a['step_id']} ({a['action']}) ended {a['status']}: {a['summary']}"
        for a in facts["actions"]
        if a["status"] in ("failed", "blocked", "expired", "rejected")
    ]
    tta = times["time_to_acknowledge_s"]
    if tta is None:
        improve.append("Nobody acknowledged the incident before it was resolved.")
    whys = [
        {"question": f"Why was {service} affected?", "answer": incident["title"]},
        {"question": "Why did that happen?", "answer": leading},
    ]
    for hypothesis in hypotheses[1:3]:
        whys.append({"question": "What else contributed?", "answer": hypothesis})
    whys.append(
        {
            "question": "Why was it not prevented?",
            "answer": "To be answered in review: which safeguard would have caught it earlier.",
        }
    )
    return {
        "summary": (
            f"{incident['severity']} incident on {service}: {incident['title']}. "
            f"Detected {facts['times']['detected_at'][:16].replace('T', ' ')} UTC, "
            f"resolved after {humanize(times['time_to_resolve_s'])}."
        ),
        "impact": impact,
        "contributing_factors": _bullets(
            hypotheses[1:], "- None recorded beyond the root cause; add any found in review."
        ),
        "root_cause": f"{leading}"
        + (
            f"\n\nAffected system: {diagnosis['affected_system']}."
            if diagnosis["affected_system"]
            else ""
        ),
        "root_cause_category": category if category != "unknown" else "unknown",
        "five_whys": whys,
        "went_well": _bullets(went_well, "- The incident was declared and tracked in one place."),
        "to_improve": _bullets(improve, "- Nothing recorded yet; add what review finds."),
        "action_items": action_items(facts),
        "lessons": f"- Watch for {category.replace('_', ' ')} on {service}; the runbook and "
        "checks of this incident are the starting point next time.",
    }
