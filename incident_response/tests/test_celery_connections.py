"""A worker keeps its database connection between tasks (CONN_MAX_AGE), as a web process
keeps it between requests; an eager task never touches its caller's connection."""

from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from incident_response.celery import _close_old_connections, app


def _task(*, eager: bool) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celery_leaves_connections_to_django():
    # Without it, Celery's Django fixup closes every connection after every task.
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 1000


@pytest.mark.django_db(transaction=True)
def test_a_worker_task_keeps_a_connection_younger_than_conn_max_age(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    connection.ensure_connection()
    connection.close_at = None  # what Django sets for a connection it may keep
    raw = connection.connection
    _close_old_connections(task=_task(eager=False))
    assert connection.connection is raw  # kept: the next task reuses it


@pytest.mark.django_db(transaction=True)
def test_a_worker_task_closes_a_connection_when_conn_max_age_is_zero(monkeypatch):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("Django never closes an in-memory SQLite database (the test database)")
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()
    connection.ensure_connection()
    connection.close_at = 0  # CONN_MAX_AGE=0: due for closing at once
    _close_old_connections(task=_task(eager=False))
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_leaves_the_callers_transaction_alone(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    with transaction.atomic():
        connection.ensure_connection()
        connection.close_at = 0
        raw = connection.connection
        _close_old_connections(task=_task(eager=True))
        assert connection.connection is raw and connection.in_atomic_block
