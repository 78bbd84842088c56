"""Rows of several tables and one move, written by one PostgreSQL statement."""

from datetime import UTC, datetime

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from incidents.choices import INCIDENT_TRANSITIONS, IncidentStatus, TimelineKind
from incidents.events import timeline_event
from incidents.models import Incident, TimelineEvent
from incidents.together import reserve_ids, write_together
from incidents.transitions import IllegalTransition, planned_move

from .factories import IncidentFactory

RESOLVED_AT = datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("one data-modifying statement is PostgreSQL's; set DATABASE_URL")


def _resolve(incident: Incident, from_status: str = IncidentStatus.INVESTIGATING):
    return planned_move(
        Incident,
        pk=incident.pk,
        table=INCIDENT_TRANSITIONS,
        from_status=from_status,
        to_status=IncidentStatus.RESOLVED,
        resolved_at=RESOLVED_AT,
    )


def _events(incident: Incident, n: int) -> list[TimelineEvent]:
    return [
        timeline_event(incident=incident, kind=TimelineKind.NOTE, message=f"note {i}")
        for i in range(n)
    ]


def test_rows_of_two_tables_and_a_move_are_one_statement_and_get_their_ids():
    incident = IncidentFactory()
    events = _events(incident, 3)
    new = [
        Incident(title=f"new {i}", service="checkout", detected_at=RESOLVED_AT) for i in range(2)
    ]
    with CaptureQueriesContext(connection) as queries:
        moved = write_together([events, new], _resolve(incident))
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert moved is True
    assert len(statements) == 1, statements
    # Each row has the id it was stored under, in the order given.
    stored = list(TimelineEvent.objects.filter(incident=incident).order_by("id"))
    assert [e.pk for e in events] == [e.pk for e in stored]
    assert [e.message for e in stored] == ["note 0", "note 1", "note 2"]
    assert all(e.created_at is not None for e in events)  # auto_now_add stamped
    assert [Incident.objects.get(pk=i.pk).title for i in new] == ["new 0", "new 1"]
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == RESOLVED_AT
    assert incident.updated_at > incident.created_at  # stamped as `transition` stamps it


def test_a_move_lost_to_someone_else_is_reported_and_the_rows_are_still_written():
    incident = IncidentFactory(status=IncidentStatus.MONITORING)
    events = _events(incident, 1)
    assert write_together([events], _resolve(incident)) is False
    assert TimelineEvent.objects.filter(pk=events[0].pk).exists()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.MONITORING


def test_a_move_the_table_forbids_is_refused_before_anything_is_sent():
    incident = IncidentFactory(status=IncidentStatus.RESOLVED)
    with pytest.raises(IllegalTransition):
        planned_move(
            Incident,
            pk=incident.pk,
            table=INCIDENT_TRANSITIONS,
            from_status=IncidentStatus.RESOLVED,
            to_status=IncidentStatus.MONITORING,
        )


def test_a_failing_row_writes_nothing_and_the_callers_transaction_goes_on():
    incident = IncidentFactory()
    events = _events(incident, 2)
    earlier = TimelineEvent.objects.create(incident=incident, kind="note", message="earlier")
    broken = _events(incident, 1)
    broken[0].pk = earlier.pk  # a key that is taken: a row written already
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            write_together([events, broken], _resolve(incident))
        # Under its savepoint: the transaction is usable, and nothing of it was written.
        assert list(TimelineEvent.objects.filter(incident=incident)) == [earlier]
        assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.INVESTIGATING
    assert all(e.pk is None for e in events)


def test_a_value_longer_than_its_column_is_refused_not_cut_short():
    incident = IncidentFactory()
    too_long = Incident(title="x" * 201, service="checkout", detected_at=RESOLVED_AT)
    with pytest.raises(DataError):
        write_together([_events(incident, 1), [too_long]])
    assert not Incident.objects.filter(title__startswith="xxx").exists()


def test_reserved_ids_are_the_ones_written_and_a_list_is_all_reserved_or_none():
    incident = IncidentFactory()
    events = _events(incident, 3)
    reserve_ids(events)
    ids = [e.pk for e in events]
    assert len(set(ids)) == 3 and all(ids)
    write_together([events])
    assert sorted(TimelineEvent.objects.filter(incident=incident).values_list("id", flat=True)) == (
        sorted(ids)
    )
    mixed = _events(incident, 2)
    reserve_ids(mixed[:1])
    with pytest.raises(ValueError, match="all carry their ids or none"):
        write_together([mixed])


def test_a_row_dated_already_keeps_its_time_and_the_others_are_stamped():
    incident = IncidentFactory()
    dated, undated = _events(incident, 2)
    dated.created_at = RESOLVED_AT
    write_together([[dated, undated]])
    assert TimelineEvent.objects.get(pk=dated.pk).created_at == RESOLVED_AT
    assert TimelineEvent.objects.get(pk=undated.pk).created_at > RESOLVED_AT
