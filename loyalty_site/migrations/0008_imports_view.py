"""The imports list (core.ImportBatch) for the staff who import or check imports."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ["CX agent", "Marketer", "Operations"]


def grant(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    view = apps.get_model("auth", "Permission").objects.using(db).get(
        content_type__app_label="core", codename="view_importbatch"
    )
    for group in apps.get_model("auth", "Group").objects.using(db).filter(name__in=GROUPS):
        group.permissions.add(view)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0007_warm_dashboard_task"),
        ("core", "0005_import_batch"),
    ]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
