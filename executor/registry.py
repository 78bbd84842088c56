"""The allow-list: every check and action the executor knows, by name.

A spec owns its parameter schema, its safety class, a side-effect-free
`plan(params, target)` (the dry-run) and `run(params, target, deadline)`.
Specs register themselves with `@register(...)`, one module per family under
`executor.actions`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from jsonschema import Draft202012Validator

from .choices import Safety, StepKind
from .results import StepResult


class _Impl(Protocol):
    def plan(self, params: dict, target: Any) -> str: ...

    def run(self, params: dict, target: Any, deadline: float) -> StepResult: ...


@dataclass(frozen=True)
class ActionSpec:
    name: str
    kind: StepKind
    safety: Safety
    description: str
    params_schema: dict
    target_kinds: tuple[str, ...]
    impl: _Impl
    # Maps another contract's parameters (the seed design's names) onto this
    # spec's own, given the step's TargetScope; raises StepBlocked when it cannot.
    normalize: Callable[[dict, Any], dict] | None = None

    def accept(self, params: dict, scope: Any) -> dict:
        """`params` in this spec's own terms (unchanged when there is nothing to map)."""
        return self.normalize(params, scope) if self.normalize is not None else params

    def validate_params(self, params: Any) -> list[str]:
        """Every problem with `params`, as readable lines; empty when valid."""
        validator = Draft202012Validator(self.params_schema)
        problems = []
        for err in sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path)):
            where = "".join(
                f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path
            )
            problems.append(f"params{where}: {err.message}")
        return problems

    def plan(self, params: dict, target: Any) -> str:
        return self.impl.plan(params, target)

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        return self.impl.run(params, target, deadline)


REGISTRY: dict[str, ActionSpec] = {}


def _with_target_param(schema: dict) -> dict:
    """Every step may name its target; the schema says so once, here."""
    schema = dict(schema)
    props = dict(schema.get("properties", {}))
    props.setdefault(
        "target",
        {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9_-]{0,62}$(?!\n)",
            "description": "Name of the target to run against; default: the service's target of the right kind.",
        },
    )
    schema["properties"] = props
    schema.setdefault("type", "object")
    schema["additionalProperties"] = False
    return schema


def register(
    *,
    name: str,
    kind: StepKind,
    safety: Safety,
    description: str,
    params: dict,
    targets: tuple[str, ...],
    normalize: Callable[[dict, Any], dict] | None = None,
) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if name in REGISTRY:
            raise RuntimeError(f"action {name} registered twice")
        Draft202012Validator.check_schema(params)
        REGISTRY[name] = ActionSpec(
            name=name,
            kind=StepKind(kind),
            safety=Safety(safety),
            description=description,
            params_schema=_with_target_param(params),
            target_kinds=targets,
            impl=cls(),
            normalize=normalize,
        )
        return cls

    return decorate


def allowed_names() -> set[str]:
    """Registered names, narrowed by EXECUTOR_ALLOWED_ACTIONS when it is set."""
    allowed = set(settings.EXECUTOR_ALLOWED_ACTIONS)
    return {n for n in REGISTRY if not allowed or n in allowed}


def get_spec(name: str) -> ActionSpec | None:
    """The spec for `name` if it is registered and allowed here, else None."""
    if name not in allowed_names():
        return None
    return REGISTRY[name]


def catalog(kind: StepKind | None = None) -> list[ActionSpec]:
    names = sorted(allowed_names())
    specs = [REGISTRY[n] for n in names]
    return [s for s in specs if kind is None or s.kind == kind]
