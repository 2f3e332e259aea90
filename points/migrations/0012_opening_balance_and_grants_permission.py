"""The "Opening balance" definition (a programme migrating in: members' points and
lifetime points written once as ledger entries, so the ledger explains every point),
and the right to import point grants, given to Marketer (CX leads get it through
their group when a superuser adds it)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPENING_BALANCE = "opening-balance"


def create(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    apps.get_model("points", "PointDefinition").objects.using(db).get_or_create(
        handle=OPENING_BALANCE,
        defaults=dict(
            name="Opening balance",
            kind="bonus",
            earn_rate=1,
            counts_toward_tier=False,  # each entry says whether it counts (points or lifetime)
        ),
    )
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    permission = apps.get_model("auth", "Permission").objects.using(db)
    marketer, _ = apps.get_model("auth", "Group").objects.using(db).get_or_create(name="Marketer")
    marketer.permissions.add(
        permission.get(content_type__app_label="points", codename="import_grants")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0011_import_batch"),
        ("loyalty_site", "0007_warm_dashboard_task"),
    ]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
