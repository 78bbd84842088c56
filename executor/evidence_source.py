"""What the context stage reads through the executor: the catalog's golden-signal
queries and dependencies, metrics from the service's Prometheus target, error
lines from its Loki target and the images its Fly apps run (deploys the webhooks
may not have told us about). Installed into `evidence.sources` by the pipeline.

Read-only: only range queries, through the same connectors (and their query
checks) as the runbook's checks.
"""

from dataclasses import dataclass, field

from .connectors import fly, loki, prometheus
from .results import StepBlocked
from .targets import ResolvedTarget, TargetScope, catalog_service, target_scope


@dataclass
class Readers:
    service: str
    signals: dict[str, str] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    metrics: ResolvedTarget | None = None
    logs: ResolvedTarget | None = None
    apps: list[ResolvedTarget] = field(default_factory=list)

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

    def recent_deploys(self, *, since: float, deadline: float) -> list[dict] | None:
        """The images the service's Fly apps moved to since `since`, as change dicts
        (deploy, version = image reference, previous = the image other machines still
        run); None without a Fly target. Raises on the first app that cannot be read."""
        if not self.apps:
            return None
        out = []
        for target in self.apps:
            for image in fly.deployed_images(target, deadline=deadline):
                if image["started_at"].timestamp() < since:
                    continue
                out.append(
                    {
                        "service": self.service,
                        "version": image["image"],
                        "previous_version": image["previous"],
                        "started_at": image["started_at"],
                        "finished_at": image["finished_at"],
                        "external_id": f"fly:{image['app']}:{image['image']}",
                        "description": f"{image['machines']} machine(s) of Fly app "
                        f"{image['app']} run {image['image']}",
                    }
                )
        return out

    def scrub(self, text: str) -> str:
        for target in (self.metrics, self.logs, *self.apps):
            if target is not None:
                text = target.scrub(text)
        return text


def _first(scope: TargetScope, kind: str) -> ResolvedTarget | None:
    try:
        return scope.resolve(name=None, kinds=(kind,))
    except StepBlocked:
        return None


def for_service(service: str) -> Readers:
    scope = target_scope(service)
    row = catalog_service(service)  # once per stage when it pins the catalog
    signals = row.golden_signals if row and isinstance(row.golden_signals, dict) else {}
    deps = row.dependencies if row and isinstance(row.dependencies, list) else []
    return Readers(
        service=service,
        signals={str(k): str(v) for k, v in signals.items() if v},
        dependencies=[str(d) for d in deps][:10],
        metrics=_first(scope, "prometheus"),
        logs=_first(scope, "loki"),
        # Only the service's own apps: a shared one's deploys are not this service's.
        apps=[t for t in scope.offered(("fly",)) if t.name in (scope.own or ()) and not t.demo],
    )
