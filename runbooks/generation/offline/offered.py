"""What the executor offers the offline planner: target kinds, offered steps, params.

Everything the planner asks the executor goes through the installed offer
(`runbooks.generation.offer`), the same one Claude's prompt and schema are built from.
"""

from ..offer import offer


def configured_target_kinds() -> frozenset[str]:
    """The kinds of every target the executor has configured."""
    return offer().target_kinds()


def offered_steps(service: str) -> dict[str, list[str]]:
    """The same view of actions and targets that Claude gets for this service."""
    return offer().step_targets(service)


def allowed_steps(steps: list[dict | None], offered: dict[str, list[str]]) -> list[dict]:
    """Keep only steps the executor allows here, with params its schema accepts, and a
    target to run on for this service (`offered`, from the generator's catalog)."""
    out = []
    for step in steps:
        if step is None or step["action"] not in offered:
            continue
        spec = offer().get_spec(step["action"])
        if spec is None or spec.validate_params(step["params"]):
            continue
        out.append(step)
    return out
