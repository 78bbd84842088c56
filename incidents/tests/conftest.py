"""Fixtures for the incidents tests: a real Alertmanager posting to the live server."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.fakes.alertmanager import alertmanager_binary, start_alertmanager
from testing.services import need_service

from .ingest_helpers import TOKEN


@pytest.fixture
def alertmanager(django_db_setup, live_server, tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager whose webhook is our live server's /hooks/am/: its base URL.

    Its log is tmp_path / "alertmanager.log".
    """
    # django_db_setup first: the test database must exist before the session's live server
    # starts, or the server opens an in-memory SQLite connection of its own and reads here
    # fail with "database table is locked" while a request writes.
    binary = alertmanager_binary()
    if not binary:
        need_service("Alertmanager", "the prometheus-alertmanager binary is not installed")
    am = start_alertmanager(
        binary, tmp_path, webhook_url=f"{live_server.url}/hooks/am/", token=TOKEN
    )
    yield am.url
    am.stop()
