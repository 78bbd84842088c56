"""The `approvers` group: who may decide on action requests in the admin queue.

Members also need is_staff to sign in to the admin; the group gives them the
decision permission and read access to what they decide on.
"""

from django.db import migrations

GROUP = "approvers"
# (app_label, model, codename)
PERMISSIONS = [
    ("executor", "actionrequest", "approve_actionrequest"),
    ("executor", "actionrequest", "view_actionrequest"),
    ("executor", "approval", "view_approval"),
    ("executor", "execution", "view_execution"),
    ("incidents", "incident", "view_incident"),
    ("incidents", "timelineevent", "view_timelineevent"),
]


def create_group(apps, schema_editor) -> None:
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations (post_migrate); make them now.
    # Historical app configs have no models_module, which create_permissions skips.
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original

    grant(apps, GROUP, PERMISSIONS)


def grant(apps, name: str, permissions: list[tuple[str, str, str]]) -> None:
    """Make the group `name` (idempotently) and give it the permissions that exist."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=name)
    for app_label, model, codename in permissions:
        perm = Permission.objects.filter(
            content_type__app_label=app_label, content_type__model=model, codename=codename
        ).first()
        if perm is not None:
            group.permissions.add(perm)


def remove_group(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("incidents", "0001_initial"),
        ("executor", "0002_catalog"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
