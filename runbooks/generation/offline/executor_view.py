"""The offline planner's one view of the executor: target kinds, offered steps, params.

Everything the planner asks the executor goes through here, so that access can
be swapped for an injected interface without touching the playbooks.
"""

from executor.registry import get_spec
from executor.targets import configured_targets

from ..catalog import step_targets


def configured_target_kinds() -> frozenset[str]:
    """The kinds of every target the executor has configured."""
    return frozenset(t.kind for t in configured_targets().values())


def offered_steps(service: str) -> dict[str, list[str]]:
    """The same view of actions and targets that Claude gets for this service."""
    return step_targets(service)


def allowed_steps(steps: list[dict | None], offered: dict[str, list[str]]) -> list[dict]:
    """Keep only steps the executor allows here, with params its schema accepts, and a
    target to run on for this service (`offered`, from the generator's catalog)."""
    out = []
    for step in steps:
        if step is None or step["action"] not in offered:
            continue
        spec = get_spec(step["action"])
        if spec is None or spec.validate_params(step["params"]):
            continue
        out.append(step)
    return out
