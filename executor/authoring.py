"""What the executor offers the runbook author: its catalog, the output schema, step checks.

Everything here is derived from `executor.registry` and the contract file, so the
prompt, Claude's output schema and the executor's allow-list cannot drift apart.
The runbooks app sits below the executor and cannot import this module: the
pipeline installs it as the author's `runbooks.generation.offer.ExecutorOffer`.
"""

import copy
import functools
import json
from typing import Any

from runbooks.validation import ValidationIssue, runbook_schema

from .choices import StepKind
from .registry import catalog, get_spec
from .results import StepBlocked
from .targets import (
    catalog_pinned,
    configured_targets,
    not_about_label,
    redact_url,
    target_scope,
)

__all__ = [
    "action_catalog",
    "catalog_pinned",
    "get_spec",
    "offered_targets",
    "output_schema",
    "redact_url",
    "step_issues",
    "step_targets",
    "target_kinds",
]

# Request-wide limits of the structured-output grammar (per the API's documented
# complexity limits): beyond them the request is refused with a 400.
MAX_OPTIONAL_PROPERTIES = 24
MAX_UNION_PROPERTIES = 16

# Keywords the structured-output API accepts. Anything else is moved into the
# description (so the model still reads it); our validator enforces it afterwards.
SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "allOf",
        "enum",
        "const",
        "description",
        "title",
        "minItems",
        "format",
    }
)
SUPPORTED_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_DROPPED_SILENTLY = frozenset({"$schema", "$id", "$comment", "default", "examples"})


def step_targets(service: str = "") -> dict[str, list[str]]:
    """For each allowed action that can run here, the targets the generator may offer.

    An action with no configured target of its kinds is left out: the executor
    would block it, so the model and the offline planner never see it. When
    `service` is in the service catalog, its own targets are the ones offered
    for an action if it has any of the right kind; otherwise the shared targets
    (from the environment, built in, or catalog targets no service claims).
    Targets that belong only to other services are never offered. The built-in
    `timeline` target keeps alert.notify available everywhere.
    """
    scope = target_scope(service)
    own = scope.own
    out: dict[str, list[str]] = {}
    for spec in catalog():
        fits = [t.name for t in scope.usable() if t.kind in spec.target_kinds]
        mine = sorted(n for n in fits if own and n in own)
        names = mine or sorted(fits)
        if names:
            out[spec.name] = names
    return out


def offered_targets(service: str = "") -> list[dict]:
    """Public views (no secrets) of the targets some allowed action may use for `service`;
    one outside the service says so (`not_about`), so the runbook can say it too."""
    offered = {name for names in step_targets(service).values() for name in names}
    scope = target_scope(service)
    views = []
    for t in scope.targets.values():
        if t.name in offered:
            view = t.public()
            if not scope.is_about_service(t):
                view["not_about"] = not_about_label(service, t)
            views.append(view)
    return views


def target_kinds() -> frozenset[str]:
    """The kinds of every configured target."""
    return frozenset(t.kind for t in configured_targets().values())


def action_catalog(service: str = "") -> list[dict]:
    """The actions the executor allows here and can run for `service`, with their targets.

    See `step_targets` for which actions and targets are offered. Each `params_schema`
    is the registry's own dict (copying them all cost more than rendering the prompt):
    read it, never change it.
    """
    offered = step_targets(service)
    return [
        {
            "name": spec.name,
            "kind": spec.kind.value,
            "safety": spec.safety.value,
            "description": spec.description,
            "params_schema": spec.params_schema,
            "target_kinds": list(spec.target_kinds),
            "targets": offered[spec.name],
        }
        for spec in catalog()
        if spec.name in offered
    ]


# --- output schema for structured outputs ---------------------------------------------


def _resolve_refs(node: Any, defs: dict) -> Any:
    """Inline local `#/$defs/...` references: the contract has no recursion."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = copy.deepcopy(defs[ref.removeprefix("#/$defs/")])
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return _resolve_refs({**target, **rest}, defs)
        return {k: _resolve_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve_refs(v, defs) for v in node]
    return node


def _describe(description: str | None, dropped: dict) -> str | None:
    if not dropped:
        return description
    extra = ", ".join(f"{k}: {json.dumps(v)}" for k, v in dropped.items())
    return f"{description}\n\n{{{extra}}}" if description else f"{{{extra}}}"


def strict_schema(schema: dict) -> dict:
    """`schema` reduced to the structured-output subset.

    Unsupported constraints move into the description; every object gets
    additionalProperties false; oneOf becomes anyOf.
    """
    schema = dict(schema)
    out: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for key in list(schema):
        if key in _DROPPED_SILENTLY:
            schema.pop(key)
    if "oneOf" in schema and "anyOf" not in schema:
        schema["anyOf"] = schema.pop("oneOf")
    for key, value in schema.items():
        if key in ("description", "title"):
            continue
        if key == "properties":
            out["properties"] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = strict_schema(value)
        elif key in ("anyOf", "allOf"):
            out[key] = [strict_schema(sub) for sub in value]
        elif key == "additionalProperties":
            continue  # always false, set below
        elif key == "minItems":
            if value in (0, 1):
                out["minItems"] = value
            else:
                # Keep the model from answering with nothing; the validator checks the rest.
                out["minItems"] = 1
                dropped["minItems"] = value
        elif key == "format":
            if value in SUPPORTED_STRING_FORMATS:
                out["format"] = value
            else:
                dropped["format"] = value
        elif key in ("type", "required", "enum", "const"):
            out[key] = copy.deepcopy(value)
        else:
            dropped[key] = value
    if "const" in out or "enum" in out:
        out.pop("type", None)
    if out.get("type") == "object" or "properties" in out:
        out.setdefault("type", "object")
        out.setdefault("properties", {})
        out["additionalProperties"] = False
    description = _describe(schema.get("description"), dropped)
    if description:
        out["description"] = description
    if "title" in schema:
        out["title"] = schema["title"]
    return out


def _params_variants(params_schema: dict, target_names: list[str] | None) -> list[dict]:
    """One object schema per way of calling an action.

    A top-level oneOf of `required` lists (kill_query: pid or older_than_seconds)
    becomes one variant per branch, each without the other branches' keys, so
    no nested union is needed. `target` becomes an enum of configured targets of
    the right kind, or disappears when there are none: the model cannot invent one.
    """
    base = copy.deepcopy(params_schema)
    props = dict(base.get("properties", {}))
    if target_names:
        props["target"] = {
            "enum": list(target_names),
            "description": "Name of the target to run against; default: the service's own target of the right kind, else the first configured one.",
        }
    else:
        props.pop("target", None)
    base["properties"] = props
    branches = base.pop("oneOf", None) or base.pop("anyOf", None)
    if not branches:
        return [base]
    variants = []
    all_branch_keys = {k for b in branches for k in b.get("required", [])}
    for branch in branches:
        own = set(branch.get("required", []))
        variant = copy.deepcopy(base)
        variant["properties"] = {
            k: v for k, v in props.items() if k in own or k not in all_branch_keys
        }
        variant["required"] = sorted(set(base.get("required", [])) | own)
        variants.append(variant)
    return variants


def _optional_count(schema: Any) -> int:
    if isinstance(schema, dict):
        own = 0
        if isinstance(schema.get("properties"), dict):
            own = len(set(schema["properties"]) - set(schema.get("required", [])))
        return own + sum(_optional_count(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(_optional_count(v) for v in schema)
    return 0


def _union_count(schema: Any) -> int:
    if isinstance(schema, dict):
        own = int("anyOf" in schema or isinstance(schema.get("type"), list))
        return own + sum(_union_count(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(_union_count(v) for v in schema)
    return 0


def optional_property_count(schema: dict) -> int:
    """Properties not listed in their object's `required`, over the whole schema."""
    return _optional_count(schema)


def union_property_count(schema: dict) -> int:
    """Schemas that are unions (anyOf or a type list), over the whole schema."""
    return _union_count(schema)


def _step_variants(
    section: str, step_schema: dict, *, offered: dict[str, list[str]], with_targets: bool
) -> list[dict]:
    kind = StepKind.CHECK if section == "checks" else StepKind.ACTION
    variants = []
    for spec in catalog(kind):
        if spec.name not in offered:
            continue  # no target it could run on: the executor would block it
        names = offered[spec.name] if with_targets else None
        for params in _params_variants(spec.params_schema, names):
            variant = copy.deepcopy(step_schema)
            variant["properties"]["action"] = {
                "const": spec.name,
                "description": f"{spec.safety.value}: {spec.description}",
            }
            variant["properties"]["params"] = params
            # The contract accepts steps without a rationale (the seed design's runbooks);
            # we still ask Claude for one, which also keeps the optional-property budget.
            if "rationale" in variant["properties"]:
                variant["required"] = sorted({*variant.get("required", []), "rationale"})
            variants.append(strict_schema(variant))
    return variants


def output_schema(*, service: str = "", with_targets: bool = True) -> dict:
    """The contract as a structured-output schema, typed per action.

    Checks and recommended actions become an anyOf with one alternative per
    allowed action that has a target for `service` (its name as a const, its
    own params schema, `target` as an enum of `step_targets(service)`). If the
    per-action params would exceed the API's optional-property budget, the
    `target` properties go first, then the optional params of the actions with
    the most of them; the executor falls back to default targets and defaults.
    """
    offered = step_targets(service)
    # Built once per catalog (the allowed specs, what each is offered on): building it
    # costs more than a generation's own work. The dict is shared: read it, never change it.
    key = (
        tuple((spec.name, id(spec)) for spec in catalog()),
        tuple(sorted((name, tuple(names)) for name, names in offered.items())),
        with_targets,
    )
    return _output_schema(key)


@functools.lru_cache(maxsize=64)
def _output_schema(key: tuple) -> dict:
    _, offered_items, with_targets = key
    offered = {name: list(names) for name, names in offered_items}
    contract = runbook_schema()
    resolved = _resolve_refs(copy.deepcopy(contract), contract.get("$defs", {}))
    props = resolved["properties"]
    for section in ("checks", "recommended_actions"):
        step = props[section]["items"]
        variants = _step_variants(section, step, offered=offered, with_targets=with_targets)
        props[section] = {k: v for k, v in props[section].items() if k != "items"}
        props[section]["items"] = (
            {"anyOf": variants} if variants else {"type": "object", "properties": {}}
        )
    schema = strict_schema(resolved)
    if optional_property_count(schema) > MAX_OPTIONAL_PROPERTIES and with_targets:
        return _output_schema((key[0], offered_items, False))
    _trim_optional(schema)
    return schema


def _trim_optional(schema: dict) -> None:
    """Drop optional params, biggest offenders first, until within the budget."""
    while optional_property_count(schema) > MAX_OPTIONAL_PROPERTIES:
        params_objects = [
            v["properties"]["params"]
            for section in ("checks", "recommended_actions")
            for v in schema["properties"][section]["items"].get("anyOf", [])
        ]
        worst = max(
            params_objects,
            key=lambda p: len(set(p["properties"]) - set(p.get("required", []))),
        )
        optional = sorted(set(worst["properties"]) - set(worst.get("required", [])))
        worst["properties"].pop(optional[-1])


# --- step checks against the registry --------------------------------------------------


def step_issues(document: Any, service: str = "") -> list[ValidationIssue]:
    """Every step problem the executor would block on: unknown or disallowed action,
    wrong kind, bad params, a target that is not configured or not this service's.
    Ordered by path."""
    if not isinstance(document, dict):
        return []
    scope = target_scope(service)
    issues: list[ValidationIssue] = []
    for section, want in (("checks", StepKind.CHECK), ("recommended_actions", StepKind.ACTION)):
        steps = document.get(section)
        if not isinstance(steps, list):
            continue
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or not isinstance(step.get("action"), str):
                continue
            where = f"$.{section}[{i}]"
            spec = get_spec(step["action"])
            if spec is None:
                issues.append(
                    ValidationIssue(
                        f"{where}.action",
                        f"{step['action']!r} is not in the executor's action catalog",
                    )
                )
                continue
            if spec.kind != want:
                issues.append(
                    ValidationIssue(
                        f"{where}.action",
                        f"{spec.name} is a{'n' if spec.kind == StepKind.ACTION else ''} "
                        f"{spec.kind.value}; {section} may only use {want.value} steps",
                    )
                )
            params = step.get("params")
            if not isinstance(params, dict):
                continue  # the contract reports it
            try:
                params = spec.accept(params, scope)
            except StepBlocked as exc:
                issues.append(ValidationIssue(f"{where}.params", str(exc)))
                continue
            for line in spec.validate_params(params):
                path, sep, message = line.partition(": ")
                if not sep:
                    path, message = "params", line
                issues.append(ValidationIssue(f"{where}.{path}", message))
            target = params.get("target")
            if isinstance(target, str):
                # The executor's own resolution, so the generator and the boundary agree.
                try:
                    scope.resolve(name=target, kinds=spec.target_kinds)
                except StepBlocked as exc:
                    issues.append(ValidationIssue(f"{where}.params.target", str(exc)))
    return sorted(issues, key=lambda i: (i.path, i.message))
