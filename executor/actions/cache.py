"""Redis: invalidate keys by pattern with SCAN + UNLINK, never KEYS or FLUSH."""

from executor.choices import Safety, StepKind
from executor.registry import register
from executor.results import StepResult


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
                "pattern": r"^(?!\*$)[A-Za-z0-9:_.\-]+[A-Za-z0-9:_.\-*]*$",
                "maxLength": 200,
                "description": "Key glob with a literal prefix, e.g. session:* (a bare * is refused).",
            },
            "max_keys": {"type": "integer", "minimum": 1, "maximum": 100_000},
        },
    },
    targets=("redis",),
)
class CacheInvalidate:
    def plan(self, params: dict, target) -> str:
        raise NotImplementedError

    def run(self, params: dict, target, deadline: float) -> StepResult:
        raise NotImplementedError
