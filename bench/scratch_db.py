"""The scratch PostgreSQL database every bench script creates for itself and drops."""

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def _admin_url(url: str) -> tuple[str, str]:
    """(URL of the `postgres` maintenance database on the same server, database name)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def drop_database(url: str) -> None:
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        # FORCE: a connection a crashed run left behind must not keep the database alive.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def recreate_database(url: str) -> None:
    drop_database(url)
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
