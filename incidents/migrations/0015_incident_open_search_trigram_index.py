"""A trigram index of open incidents only, for the list's search, on PostgreSQL only.

Searching open incidents for a common word ("payments") read the whole-table trigram
index (0012) for every match, open or resolved, and ANDed it with the status index:
about 3 ms at 100,000 incidents for a handful of open ones. Open incidents are few; an
index of theirs alone answers in a fraction of a millisecond. The expression and the
status list are the ones the list queries with (web.selectors). SQLite: nothing.
"""

from django.db import migrations

CREATE_INDEX = (
    "CREATE INDEX IF NOT EXISTS incident_open_search_trgm ON incidents_incident "
    "USING gin ((UPPER((title || ' ' || service))) gin_trgm_ops) "
    "WHERE status IN ('investigating', 'identified', 'monitoring')"
)
DROP_INDEX = "DROP INDEX IF EXISTS incident_open_search_trgm"


def create_open_search_index(schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_INDEX)  # pg_trgm: created by 0012


def forwards(apps, schema_editor) -> None:
    create_open_search_index(schema_editor)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0014_alert_group_refresh_wanted"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
