"""Service lifecycle on Fly.io: restart machines."""

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepResult


@register(
    name="service.restart",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Restart the machines of a Fly.io app (all, or the listed machine ids).",
    params={
        "type": "object",
        "properties": {
            "machine_ids": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^[a-z0-9]{6,32}$"},
                "maxItems": 50,
            },
        },
    },
    targets=("fly",),
)
class ServiceRestart:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError
