"""Table checks and actions for PostgreSQL and SQLite targets: statistics and ANALYZE.

Each step reads the same for every database kind; what differs lives in the
adapter `database_adapters.table_adapter` picks by the target's kind.
"""

import time
from typing import Any

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult

from .database_adapters import ADAPTERS, named_table, need_table_adapter, table_adapter
from .database_common import PLAN_SECONDS, where
from .params import TABLE_PARAMS

TABLE_TARGETS = tuple(ADAPTERS)  # ("postgres", "sqlite")


@register(
    name="database.table_stats",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="Size, row estimate, dead rows, partitions, scans and last analyze/vacuum of one table.",
    params=TABLE_PARAMS,
    targets=TABLE_TARGETS,
)
class TableStats:
    def plan(self, params: dict, target: Any) -> str:
        try:
            named_table(params)
        except StepBlocked as exc:
            return f"Would refuse to read table {params.get('table')!r}: {exc}."
        return (
            f"Read the catalog and statistics of table {params.get('table')} on {where(target)}, "
            "if it lies in the target's own schemas. Read-only."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        db = need_table_adapter(target)
        ref = db.table_ref(params)  # refused before connecting
        with db.connect(target, deadline) as session:
            stats = db.table_stats(session, db.resolve_table(session, ref))
        return db.describe(stats)


@register(
    name="database.analyze_table",
    kind=StepKind.ACTION,
    safety=Safety.REVERSIBLE,
    description="Recompute planner statistics for one table (ANALYZE).",
    params=TABLE_PARAMS,
    targets=TABLE_TARGETS,
)
class AnalyzeTable:
    def plan(self, params: dict, target: Any) -> str:
        table = params.get("table")
        try:
            named_table(params)
        except StepBlocked as exc:
            return f"Would refuse to run ANALYZE on table {table!r}: {exc}."
        db = table_adapter(target)
        if db is None:
            return f"Would run ANALYZE on table {table} (no target resolved)."
        try:
            ref = db.table_ref(params)
            with db.connect(target, time.monotonic() + PLAN_SECONDS) as session:
                return db.analyze_preview(session, db.resolve_table(session, ref), target)
        except StepBlocked as exc:
            return f"Would refuse to run ANALYZE on table {table} on target {target.name}: {exc}"
        except StepError as exc:
            return f"Would run ANALYZE on table {table} on target {target.name}; cannot read it now: {exc}"

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        db = need_table_adapter(target)
        ref = db.table_ref(params)  # refused before connecting
        with db.connect(target, deadline, write=True) as session:
            ref = db.resolve_table(session, ref)
            before = db.analyze_state(session, ref)
            db.analyze(session, ref)
            after = db.analyze_state(session, ref)
        return db.describe_analyze(ref, before, after)
