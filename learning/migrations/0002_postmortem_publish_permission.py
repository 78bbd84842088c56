"""The publish permission and the `postmortem reviewers` group that holds it: who may
send a postmortem to review and publish it (learning/permissions.py)."""

import importlib

from django.db import migrations

GROUP = "postmortem reviewers"
PERMISSIONS = [
    ("learning", "postmortem", "publish_postmortem"),
    ("learning", "postmortem", "view_postmortem"),
]

# The approvers migration knows how to make permissions exist before post_migrate does.
_approvers = importlib.import_module("executor.migrations.0003_approvers_group")


def create_group(apps, schema_editor) -> None:
    _approvers.create_group(apps, schema_editor)  # idempotent; makes the permissions
    _approvers.grant(apps, GROUP, PERMISSIONS)


def remove_group(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0001_initial"),
        ("executor", "0003_approvers_group"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="postmortem",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("publish_postmortem", "Can send postmortems to review and publish them"),
                ],
            },
        ),
        migrations.RunPython(create_group, remove_group),
    ]
