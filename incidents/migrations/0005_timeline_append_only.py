"""Timeline rows are append-only in the database too, not only in TimelineEvent.save.

PostgreSQL refuses UPDATE and DELETE of a row (TRUNCATE, used to empty test databases,
is not a row event and still works). SQLite refuses UPDATE only: Django empties SQLite
test databases with DELETE, and the incident's PROTECT already guards deletion.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "incidents_timelineevent"

PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION incidents_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER timelineevent_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION incidents_append_only();
"""
PG_REVERSE = f"""
DROP TRIGGER IF EXISTS timelineevent_append_only ON {TABLE};
DROP FUNCTION IF EXISTS incidents_append_only();
"""
SQLITE_FORWARD = f"""
CREATE TRIGGER timelineevent_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'timeline events are append-only'); END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS timelineevent_no_update;"


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
    dependencies = [("incidents", "0004_ingest_fewer_indexes")]

    operations = [
        migrations.AlterField(
            model_name="timelineevent",
            name="incident",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="timeline",
                to="incidents.incident",
            ),
        ),
        migrations.RunPython(forward, reverse),
    ]
