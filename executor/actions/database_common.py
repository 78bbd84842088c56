"""What every database step shares: the target-kind check and how a plan names the target."""

from typing import Any

from executor.results import StepBlocked

PLAN_SECONDS = 5.0  # a dry-run may read the catalog, briefly


def where(target: Any) -> str:
    return f"target {target.name}" if target is not None else "the target"


def need(target: Any, kinds: tuple[str, ...]) -> None:
    if target is None or getattr(target, "kind", "") not in kinds:
        raise StepBlocked(f"this step needs a {' or '.join(kinds)} target")
