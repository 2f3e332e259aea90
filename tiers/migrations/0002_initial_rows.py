"""The rows a fresh database needs: the entry tier (threshold 0), the programme
version token and the degradation policy (off)."""

from django.db import migrations


def create_rows(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    tiers = apps.get_model("tiers", "Tier").objects.using(db)
    if not tiers.filter(threshold=0).exists():
        tiers.create(name="Bronze", code="bronze", threshold=0, multiplier=1)
    apps.get_model("tiers", "ProgrammeVersion").objects.using(db).get_or_create(pk=1)
    apps.get_model("tiers", "DegradationPolicy").objects.using(db).get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("tiers", "0001_initial")]
    operations = [migrations.RunPython(create_rows, migrations.RunPython.noop)]
