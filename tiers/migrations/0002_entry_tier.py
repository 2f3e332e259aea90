from django.db import migrations


def create_entry_tier(apps, schema_editor):
    Tier = apps.get_model("tiers", "Tier")
    if not Tier.objects.filter(threshold=0).exists():
        Tier.objects.create(name="Bronze", code="bronze", threshold=0, multiplier=1)


class Migration(migrations.Migration):
    dependencies = [("tiers", "0001_initial")]
    operations = [migrations.RunPython(create_entry_tier, migrations.RunPython.noop)]
