"""PostgreSQL and SQLite checks and actions. Importing this module registers them all:
the table steps (`database_tables`) and the server-activity steps (`database_queries`).
"""

from . import database_queries, database_tables  # noqa: F401
