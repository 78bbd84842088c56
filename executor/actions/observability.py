"""Prometheus and Loki queries."""

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepResult


@register(
    name="metrics.query",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Evaluate a PromQL expression over a window: current, min, max, baseline and "
    "change; a breach when threshold is given.",
    params={
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 500},
            "lookback_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
            "threshold": {"type": "number"},
        },
    },
    targets=("prometheus",),
)
class MetricsQuery:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError


@register(
    name="logs.search",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Search a service's logs for a plain-text pattern: count, top repeated messages, samples.",
    params={
        "type": "object",
        "required": ["service", "pattern"],
        "properties": {
            "service": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,100}$"},
            "pattern": {"type": "string", "minLength": 1, "maxLength": 200},
            "lookback_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
        },
    },
    targets=("loki",),
)
class LogsSearch:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError
