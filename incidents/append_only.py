"""Database triggers that make a table append-only, for migrations to install.

PostgreSQL refuses UPDATE and DELETE of a row (TRUNCATE, which empties test databases,
is not a row event and still works). SQLite refuses UPDATE only: Django empties SQLite
test databases with DELETE, and PROTECT foreign keys guard deletion there.
"""

from django.db import migrations


def append_only(table: str, *, what: str) -> migrations.RunPython:
    """A migration operation installing (and, reversed, removing) the triggers on `table`."""
    function = f"{table}_append_only"
    pg_forward = f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {function}();
"""
    pg_reverse = f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
DROP FUNCTION IF EXISTS {function}();
"""
    sqlite_forward = f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{what} are append-only'); END;
"""
    sqlite_reverse = f"DROP TRIGGER IF EXISTS {table}_no_update;"

    def run(schema_editor, pg: str, sqlite: str) -> None:
        vendor = schema_editor.connection.vendor
        sql = pg if vendor == "postgresql" else sqlite if vendor == "sqlite" else ""
        if sql:  # one statement for SQLite; psycopg runs several in one call
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    def forward(apps, schema_editor) -> None:
        run(schema_editor, pg_forward, sqlite_forward)

    def reverse(apps, schema_editor) -> None:
        run(schema_editor, pg_reverse, sqlite_reverse)

    return migrations.RunPython(forward, reverse)
