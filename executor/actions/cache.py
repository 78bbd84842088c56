"""Redis: invalidate keys by pattern with SCAN + UNLINK, never KEYS or FLUSH."""

import time
from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import redis as rconn
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult

DEFAULT_MAX_KEYS = 10_000
PLAN_SECONDS = 5.0  # counting is SCAN only, and bounded in time as well as in keys


@register(
    name="cache.invalidate",
    kind=StepKind.ACTION,
    safety=Safety.REVERSIBLE,
    description="Delete cache keys matching a glob pattern (SCAN + UNLINK), at most max_keys.",
    params={
        "type": "object",
        "required": ["pattern"],
        "properties": {
            "pattern": {
                "type": "string",
                "pattern": r"^(?!\*$)[A-Za-z0-9:_.\-]+[A-Za-z0-9:_.\-*]*$(?!\n)",
                "maxLength": 200,
                "description": "Key glob with a literal prefix, e.g. session:* (a bare * is refused).",
            },
            "max_keys": {"type": "integer", "minimum": 1, "maximum": 100_000},
        },
    },
    targets=("redis",),
    normalize=seed_params.renamed("key_pattern", "pattern"),
)
class CacheInvalidate:
    def plan(self, params: dict, target: Any) -> str:
        pattern = params.get("pattern")
        max_keys = int(params.get("max_keys", DEFAULT_MAX_KEYS))
        if target is None or target.kind != "redis":
            return f"Would UNLINK keys matching {pattern!r}, at most {max_keys:,} (no target resolved)."
        try:
            found = rconn.count_matching(
                target, pattern, max_keys=max_keys, deadline=time.monotonic() + PLAN_SECONDS
            )
        except (StepError, StepBlocked) as exc:
            return f"Would UNLINK keys matching {pattern!r} on target {target.name}; cannot count them now: {exc}"
        n = found["matching"]
        if found["complete"]:
            how_many = f"{n:,} keys match now"
        elif found["stopped_by"] == "max_keys":
            how_many = (
                f"at least {n:,} keys match (counting stopped at max_keys, the run stops there too)"
            )
        else:
            how_many = f"at least {n:,} keys match (counting stopped after {PLAN_SECONDS:g} s)"
        sample = ", ".join(found["sample"][:5])
        return (
            f"Would UNLINK keys matching {pattern!r} on target {target.name} "
            f"({target.display_url}), at most {max_keys:,}: {how_many}."
            + (f" For example: {sample}" if sample else "")
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        if target is None or target.kind != "redis":
            raise StepBlocked("this step needs a redis target")
        pattern = rconn.check_pattern(params.get("pattern"))
        max_keys = int(params.get("max_keys", DEFAULT_MAX_KEYS))
        result = rconn.unlink_matching(target, pattern, max_keys=max_keys, deadline=deadline)
        n = result["unlinked"]
        summary = f"Unlinked {n:,} keys matching {pattern!r}"
        if result["limited"]:
            summary += f"; stopped at max_keys ({max_keys:,}), more may match"
        return StepResult(
            outcome="warn" if result["limited"] else "ok",
            summary=summary,
            data={"pattern": pattern, "max_keys": max_keys, **result},
            text=summary,
        )
