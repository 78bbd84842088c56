"""Validation of runbook artifacts against the contract, reporting every error."""

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from incidents import jsonsafe
from incidents.jsonsafe import non_finite_paths

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "runbook.schema.json"


@dataclass(frozen=True)
class ValidationIssue:
    path: str  # JSONPath-like: $.checks[2].id
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@cache
def runbook_schema() -> dict:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(runbook_schema())


def json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


# The sha256 of the canonical bytes of documents that passed, in this process: the
# executor's re-validation of the stored artifact (same bytes, checked against the
# recorded sha256) is then a look-up, not a second run of the validator.
_PASSED: OrderedDict[str, None] = OrderedDict()
_PASSED_KEPT = 256
_passed_lock = threading.Lock()


def _digest(data: Any) -> str:
    body = jsonsafe.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def validate_runbook(data: Any, *, sha256: str | None = None) -> list[ValidationIssue]:
    """All contract violations of `data`, ordered by path. Empty means valid.

    `sha256`: the digest of `data`'s canonical bytes, when the caller checked it (the
    executor, on a stored artifact); if a document with those bytes passed in this
    process already, it passes again without a second run of the validator.
    """
    if sha256 is not None:
        with _passed_lock:
            if sha256 in _PASSED:
                return []
    issues = _issues(data)
    if not issues:
        digest = sha256 or _digest(data)
        with _passed_lock:
            _PASSED[digest] = None
            while len(_PASSED) > _PASSED_KEPT:
                _PASSED.popitem(last=False)
    return issues


def _issues(data: Any) -> list[ValidationIssue]:
    issues = [
        ValidationIssue(json_path(e.absolute_path), e.message)
        for e in _validator().iter_errors(data)
    ]
    # NaN passes minimum/maximum (every comparison with it is false) and is not JSON.
    issues += [
        ValidationIssue(path, "is not a finite number (NaN and Infinity are not JSON)")
        for path in non_finite_paths(data)
    ]
    if isinstance(data, dict):
        seen: dict[str, str] = {}
        for section in ("checks", "recommended_actions"):
            steps = data.get(section)
            if not isinstance(steps, list):
                continue
            for i, step in enumerate(steps):
                if not isinstance(step, dict) or not isinstance(step.get("id"), str):
                    continue
                where = f"$.{section}[{i}].id"
                if step["id"] in seen:
                    issues.append(
                        ValidationIssue(
                            where, f"id {step['id']!r} is already used at {seen[step['id']]}"
                        )
                    )
                else:
                    seen[step["id"]] = where
    return sorted(issues, key=lambda i: (i.path, i.message))
