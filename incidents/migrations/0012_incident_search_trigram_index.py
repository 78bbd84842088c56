"""A trigram index for the incident list's search, on PostgreSQL only.

The list searches UPPER(title || ' ' || service) with LIKE '%term%' (Django's
icontains over web.selectors.incident_search_text); a GIN index with gin_trgm_ops
over that same expression serves any substring of three characters or more, where
a b-tree serves none. SQLite keeps its table scan: nothing happens there.
"""

from django.db import migrations

CREATE_EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
CREATE_INDEX = (
    "CREATE INDEX IF NOT EXISTS incident_search_trgm ON incidents_incident "
    "USING gin ((UPPER((title || ' ' || service))) gin_trgm_ops)"
)
DROP_INDEX = "DROP INDEX IF EXISTS incident_search_trgm"


def create_search_index(schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_EXTENSION)
    schema_editor.execute(CREATE_INDEX)


def forwards(apps, schema_editor) -> None:
    create_search_index(schema_editor)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0011_incident_outcome"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
