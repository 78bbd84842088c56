"""Timeline rows are append-only in the database too, not only in TimelineEvent.save."""

import django.db.models.deletion
from django.db import migrations, models

from incidents.append_only import append_only


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
        append_only("incidents_timelineevent", what="timeline events"),
    ]
