"""Approvals are append-only in the database: a decision is written once, never edited."""

from django.db import migrations

from incidents.append_only import append_only


class Migration(migrations.Migration):
    dependencies = [("executor", "0004_approval_rounds")]

    operations = [append_only("executor_approval", what="approvals")]
