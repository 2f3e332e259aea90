"""Operations: the staff who import purchase and return files and check what they
did. They see members (to check the rows of a file), transactions, the ledger and the
runs of the jobs; they give no points and redeem nothing."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATIONS = "Operations"
GRANTS = {
    "members": ["view_member"],
    "points": ["view_transaction", "add_transaction", "view_ledgerentry", "view_expiryrun"],
    "core": ["view_jobrun"],
}


def create_group(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    group, _ = apps.get_model("auth", "Group").objects.using(db).get_or_create(name=OPERATIONS)
    for app_label, codenames in GRANTS.items():
        group.permissions.add(
            *Permission.objects.using(db).filter(
                content_type__app_label=app_label, codename__in=codenames
            )
        )


def drop_group(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(db).filter(name=OPERATIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0005_jobs_moved_to_core"),
        ("core", "0001_initial"),
        ("points", "0008_owner_and_app_roles"),
        ("members", "0008_export_permission"),
    ]
    operations = [migrations.RunPython(create_group, drop_group)]
