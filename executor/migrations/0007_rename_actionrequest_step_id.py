# The column holds the runbook step's id ("a1"), not an action's: name it so.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("executor", "0006_safe_mode"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="actionrequest",
            name="actionrequest_runbook_action",
        ),
        migrations.RenameField(
            model_name="actionrequest",
            old_name="action_id",
            new_name="step_id",
        ),
        migrations.AddConstraint(
            model_name="actionrequest",
            constraint=models.UniqueConstraint(
                fields=("runbook", "step_id"), name="actionrequest_runbook_action"
            ),
        ),
    ]
