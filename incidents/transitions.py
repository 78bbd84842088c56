"""The one way a status field moves: along its table, as a conditional UPDATE.

Every status field (incident, runbook, execution, action request) has a table of
allowed moves beside its choices. `transition` refuses a move the table does not
allow (IllegalTransition, a bug or a stale form) and tells it apart from a lost
race (False: the row was no longer in the state the caller saw), so two workers
or two approvers can never make the same move.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models
from django.utils import timezone

Table = Mapping[str, frozenset[str]]


class IllegalTransition(Exception):
    """A move the transition table does not allow."""

    def __init__(self, model: str, source: str, target: str) -> None:
        self.source, self.target = source, target
        super().__init__(f"{model} cannot move from {source} to {target}")


def check_transition(table: Table, source: str, target: str, *, model: str = "status") -> None:
    """Raise IllegalTransition unless the table allows source → target."""
    if target not in table.get(source, frozenset()):
        raise IllegalTransition(model, source, target)


def transition(
    model: type[models.Model],
    *,
    pk: Any,
    table: Table,
    from_status: str | Iterable[str],
    to_status: str,
    status_field: str = "status",
    **fields: Any,
) -> bool:
    """Move one row from `from_status` (one state or several) to `to_status`; True if this
    caller won.

    Raises IllegalTransition if the table forbids any of the moves asked for; returns
    False when the row was not in a source state any more (someone else moved it).
    `updated_at` is stamped when the model has one, since `update()` skips auto_now.
    """
    sources = [from_status] if isinstance(from_status, str) else list(from_status)
    for source in sources:
        check_transition(table, source, to_status, model=model.__name__)
    if "updated_at" not in fields and any(f.name == "updated_at" for f in model._meta.fields):
        fields["updated_at"] = timezone.now()
    updated = model._default_manager.filter(pk=pk, **{f"{status_field}__in": sources}).update(
        **{status_field: to_status}, **fields
    )
    return bool(updated)
