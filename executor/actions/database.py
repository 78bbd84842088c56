"""PostgreSQL and SQLite checks and actions. Importing this module registers them all:
the table steps (`database_tables`), the server-activity steps (`database_queries`) and
SQLite's VACUUM (`database_vacuum`).
"""

from . import database_queries, database_tables, database_vacuum  # noqa: F401
