"""Notifications: Slack when a Slack target is configured, the incident timeline otherwise."""

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepResult


@register(
    name="alert.notify",
    kind=StepKind.ACTION,
    safety=Safety.REVERSIBLE,
    description="Tell people: post a message to Slack, or to the incident timeline when Slack "
    "is not configured.",
    params={
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": 2000},
            "channel": {"type": "string", "pattern": r"^[#@]?[a-z0-9][a-z0-9_.\-]{0,79}$"},
        },
    },
    targets=("slack", "timeline"),
)
class Notify:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError
