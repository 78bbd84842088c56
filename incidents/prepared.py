"""Statements bound on the server, so PostgreSQL can keep their plan per connection.

Django's own cursors bind parameters on the client and never prepare. The few hot
statements that gain from a kept plan (a one-alert delivery's insert, the list page's
compiled reads) take their cursor here: still Django's wrapper around it, so errors,
broken transactions, the query log and execute_wrappers work as for any other.
"""

import functools
from typing import Any

from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _LoggedAsWritten(CursorDebugWrapper):
    """The query log's entry is the statement as written: a backend set to bind on the
    client cannot render one bound on the server (it would log None)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


@functools.cache
def _cursor_classes() -> tuple[type, type]:
    """(binds on the server, and also prepares at once); imported on first use, since
    the PostgreSQL backend's module needs psycopg."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            kwargs.setdefault("prepare", True)
            return super().execute(query, params, **kwargs)

    return ServerBindingCursor, PreparingCursor


def server_cursor(connection: Any, *, always_prepare: bool = False) -> Any:
    """A cursor on `connection` (PostgreSQL) that binds on the server. psycopg prepares
    a statement once it has run prepare_threshold times on the connection
    (DATABASE_PREPARE_THRESHOLD in the settings), or at once with `always_prepare`."""
    binding, preparing = _cursor_classes()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = (preparing if always_prepare else binding)(connection.connection)
    if connection.queries_logged:
        return _LoggedAsWritten(raw, connection)
    return connection.make_cursor(raw)
