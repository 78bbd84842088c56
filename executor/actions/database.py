"""PostgreSQL and SQLite checks and actions: catalog views, ANALYZE, cancelling queries."""

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepResult

from .params import TABLE_PARAMS


@register(
    name="database.slow_queries",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Queries running longer than a threshold (pg_stat_activity), and the slowest "
    "statements on record (pg_stat_statements when installed).",
    params={
        "type": "object",
        "properties": {
            "min_duration_ms": {"type": "integer", "minimum": 0, "maximum": 3_600_000},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        },
    },
    targets=("postgres",),
)
class SlowQueries:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError


@register(
    name="database.table_stats",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Size, row estimate, dead rows, partitions, scans and last analyze/vacuum of one table.",
    params=TABLE_PARAMS,
    targets=("postgres", "sqlite"),
)
class TableStats:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError


@register(
    name="database.connection_count",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Connections by state against max_connections; warns above 80% use.",
    params={"type": "object", "properties": {}},
    targets=("postgres",),
)
class ConnectionCount:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError


@register(
    name="database.analyze_table",
    kind=StepKind.ACTION,
    safety=Safety.REVERSIBLE,
    description="Recompute planner statistics for one table (ANALYZE).",
    params=TABLE_PARAMS,
    targets=("postgres", "sqlite"),
)
class AnalyzeTable:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError


@register(
    name="database.kill_query",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Cancel running queries (pg_cancel_backend): one backend by pid, or every "
    "client query running longer than older_than_seconds.",
    params={
        "type": "object",
        "properties": {
            "pid": {"type": "integer", "minimum": 1},
            "older_than_seconds": {"type": "integer", "minimum": 1, "maximum": 86_400},
        },
        "oneOf": [{"required": ["pid"]}, {"required": ["older_than_seconds"]}],
    },
    targets=("postgres",),
)
class KillQuery:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError
