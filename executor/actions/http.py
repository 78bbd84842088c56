"""HTTP health checks: status and latency of a service's health URL."""

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepResult


@register(
    name="http.health_check",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="GET the target's health URL (plus an optional path) and report status and latency.",
    params={
        "type": "object",
        "properties": {
            "path": {"type": "string", "pattern": r"^(/[A-Za-z0-9._~\-]*)*$", "maxLength": 200},
            "expect_status": {"type": "integer", "minimum": 100, "maximum": 599},
            "max_latency_ms": {"type": "integer", "minimum": 1, "maximum": 60_000},
        },
    },
    targets=("http",),
)
class HealthCheck:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError
