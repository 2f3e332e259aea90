"""The rows a fresh database needs: the entry tier (threshold 0), the programme
version token and the degradation policy (off)."""

from django.db import migrations


def create_rows(apps, schema_editor):
    Tier = apps.get_model("tiers", "Tier")
    if not Tier.objects.filter(threshold=0).exists():
        Tier.objects.create(name="Bronze", code="bronze", threshold=0, multiplier=1)
    apps.get_model("tiers", "ProgrammeVersion").objects.get_or_create(pk=1)
    apps.get_model("tiers", "DegradationPolicy").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("tiers", "0001_initial")]
    operations = [migrations.RunPython(create_rows, migrations.RunPython.noop)]
