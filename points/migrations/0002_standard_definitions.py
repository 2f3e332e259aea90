from django.db import migrations

DEFINITIONS = [
    # handle, name, kind, counts toward tier
    ("purchase-points", "Purchase points", "purchase", True),
    ("manual-adjustment", "Manual adjustment", "bonus", False),
    ("tier-up-bonus", "Tier-up bonus", "bonus", False),
]


def create_definitions(apps, schema_editor):
    PointDefinition = apps.get_model("points", "PointDefinition")
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for handle, name, kind, counts in DEFINITIONS:
        PointDefinition.objects.using(db).get_or_create(
            handle=handle,
            defaults=dict(name=name, kind=kind, earn_rate=1, counts_toward_tier=counts),
        )


class Migration(migrations.Migration):
    dependencies = [("points", "0001_initial")]
    operations = [migrations.RunPython(create_definitions, migrations.RunPython.noop)]
