from django.db import migrations


def create_row(apps, schema_editor):
    apps.get_model("tiers", "DegradationPolicy").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("tiers", "0005_degradationpolicy")]
    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
