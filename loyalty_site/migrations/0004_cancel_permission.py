"""Cancelling a redemption refunds points: its own permission, given to CX agents
(it was the change permission, which every action without a permission bypassed)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    config = apps.get_app_config("rewards")
    config.models_module = True
    create_permissions(config, verbosity=0, using=db)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    cancel = Permission.objects.using(db).get(
        content_type__app_label="rewards", codename="cancel_redemption"
    )
    for group in Group.objects.using(db).filter(name="CX agent"):
        group.permissions.add(cancel)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="rewards", codename="cancel_redemption"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0003_job_runs"),
        ("rewards", "0002_cancel_permission"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
