from django.db import migrations


def create_row(apps, schema_editor):
    apps.get_model("tiers", "ProgrammeVersion").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("tiers", "0003_programme_version")]
    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
