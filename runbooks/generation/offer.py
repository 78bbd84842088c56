"""What the runbook author needs from the executor, as an interface.

The executor's registry decides which actions exist, their params and their targets;
the author (Claude's prompt and output schema, the offline planner) must use exactly
that. The runbooks app sits below the executor and never imports it: the pipeline
installs the executor's implementation (`executor.authoring`) when Django starts.
"""

from contextlib import AbstractContextManager
from typing import Any, Protocol

from runbooks.validation import ValidationIssue


class ExecutorOffer(Protocol):
    def action_catalog(self, service: str = "") -> list[dict]:
        """The allowed actions that can run for `service`: name, kind, safety, params, targets
        (the params schemas are shared: read them, never change them)."""

    def output_schema(self, *, service: str = "", with_targets: bool = True) -> dict:
        """The contract as a structured-output schema, typed per allowed action."""

    def step_issues(self, document: Any, service: str = "") -> list[ValidationIssue]:
        """Every step problem the executor would block on."""

    def step_targets(self, service: str = "") -> dict[str, list[str]]:
        """For each allowed action, the target names the author may offer."""

    def offered_targets(self, service: str = "") -> list[dict]:
        """Public views (no secrets) of the targets offered for `service`."""

    def target_kinds(self) -> frozenset[str]:
        """The kinds of every configured target."""

    def get_spec(self, name: str) -> Any:
        """The registry's spec of an action (params schema, validate_params), or None."""

    def redact_url(self, url: str) -> str:
        """A URL without credentials, query or fragment."""

    def catalog_pinned(self) -> AbstractContextManager[None]:
        """Within the block, the target catalog is read once per service, not per question."""


_installed: ExecutorOffer | None = None


def install(offer: ExecutorOffer) -> None:
    global _installed
    _installed = offer


def offer() -> ExecutorOffer:
    if _installed is None:
        raise RuntimeError("no executor offer installed: is the pipeline app installed?")
    return _installed
