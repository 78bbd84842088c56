"""Approvals are append-only in the database: a decision is written once, never edited.

As for the timeline: PostgreSQL refuses UPDATE and DELETE of a row (TRUNCATE still empties
test databases); SQLite refuses UPDATE only, since Django empties SQLite with DELETE.
"""

from django.db import migrations

TABLE = "executor_approval"

PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION executor_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER approval_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION executor_append_only();
"""
PG_REVERSE = f"""
DROP TRIGGER IF EXISTS approval_append_only ON {TABLE};
DROP FUNCTION IF EXISTS executor_append_only();
"""
SQLITE_FORWARD = f"""
CREATE TRIGGER approval_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS approval_no_update;"


def _run(schema_editor, pg: str, sqlite: str) -> None:
    vendor = schema_editor.connection.vendor
    sql = pg if vendor == "postgresql" else sqlite if vendor == "sqlite" else ""
    if sql:  # one statement for SQLite; psycopg runs several in one call
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)


def forward(apps, schema_editor) -> None:
    _run(schema_editor, PG_FORWARD, SQLITE_FORWARD)


def reverse(apps, schema_editor) -> None:
    _run(schema_editor, PG_REVERSE, SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("executor", "0004_approval_rounds")]

    operations = [migrations.RunPython(forward, reverse)]
