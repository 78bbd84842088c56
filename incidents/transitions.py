"""The one way a status field moves: along its table, as a conditional UPDATE.

Every status field (incident, runbook, execution, action request) has a table of
allowed moves beside its choices. `transition` refuses a move the table does not
allow (IllegalTransition, a bug or a stale form) and tells it apart from a lost
race (False: the row was no longer in the state the caller saw), so two workers
or two approvers can never make the same move.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Move:
    """One row's move, checked against its table: the conditional UPDATE's parts."""

    model: type[models.Model]
    pk: Any
    sources: tuple[str, ...]
    values: dict[str, Any]  # the status field's new value first, then the other fields
    status_field: str = "status"
    where: dict[str, Any] = field(default_factory=dict)  # more the row must match (a claim)


def planned_move(
    model: type[models.Model],
    *,
    pk: Any,
    table: Table,
    from_status: str | Iterable[str],
    to_status: str,
    status_field: str = "status",
    where: dict[str, Any] | None = None,
    **fields: Any,
) -> Move:
    """The move `transition` makes, for `apply_move` or for a caller that sends the UPDATE
    with other writes (`incidents.together`). Raises IllegalTransition as `transition`
    does. `where`: what else the row must match (fields and values) for the move to hold."""
    sources = (from_status,) if isinstance(from_status, str) else tuple(from_status)
    for source in sources:
        check_transition(table, source, to_status, model=model.__name__)
    if "updated_at" not in fields and any(f.name == "updated_at" for f in model._meta.fields):
        fields["updated_at"] = timezone.now()
    return Move(model, pk, sources, {status_field: to_status, **fields}, status_field, where or {})


def apply_move(move: Move) -> bool:
    """Make the move as one conditional UPDATE; True if the row was still in a source state."""
    rows = move.model._default_manager.filter(
        pk=move.pk, **{f"{move.status_field}__in": list(move.sources)}, **move.where
    )
    return bool(rows.update(**move.values))


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
    return apply_move(
        planned_move(
            model,
            pk=pk,
            table=table,
            from_status=from_status,
            to_status=to_status,
            status_field=status_field,
            **fields,
        )
    )
