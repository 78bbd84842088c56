"""What the context stage reads through the executor: the catalog's golden-signal
queries and dependencies, metrics from the service's Prometheus target and error
lines from its Loki target. Installed into `evidence.sources` by the pipeline.

Read-only: only range queries, through the same connectors (and their query
checks) as the runbook's checks.
"""

from dataclasses import dataclass, field

from .connectors import loki, prometheus
from .models import Service
from .results import StepBlocked
from .targets import ResolvedTarget, TargetScope, target_scope


@dataclass
class Readers:
    service: str
    signals: dict[str, str] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    metrics: ResolvedTarget | None = None
    logs: ResolvedTarget | None = None

    def metric_range(
        self, expr: str, *, start: float, end: float, step: float, deadline: float
    ) -> list[tuple[float, float]] | None:
        if self.metrics is None:
            return None
        return prometheus.range_points(
            self.metrics, expr, start=start, end=end, step=step, deadline=deadline
        )

    def log_lines(
        self, *, start: float, end: float, limit: int, deadline: float
    ) -> list[tuple[float, str]] | None:
        if self.logs is None:
            return None
        pattern = (self.logs.options or {}).get("error_pattern") or "error"
        return loki.lines_between(
            self.logs,
            service=self.service,
            pattern=pattern,
            start=start,
            end=end,
            deadline=deadline,
            limit=limit,
        )

    def scrub(self, text: str) -> str:
        for target in (self.metrics, self.logs):
            if target is not None:
                text = target.scrub(text)
        return text


def _first(scope: TargetScope, kind: str) -> ResolvedTarget | None:
    try:
        return scope.resolve(name=None, kinds=(kind,))
    except StepBlocked:
        return None


def for_service(service: str) -> Readers:
    row = Service.objects.filter(name=service).first()
    scope = target_scope(service)
    signals = row.golden_signals if row and isinstance(row.golden_signals, dict) else {}
    deps = row.dependencies if row and isinstance(row.dependencies, list) else []
    return Readers(
        service=service,
        signals={str(k): str(v) for k, v in signals.items() if v},
        dependencies=[str(d) for d in deps][:10],
        metrics=_first(scope, "prometheus"),
        logs=_first(scope, "loki"),
    )
