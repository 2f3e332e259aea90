from django.db import migrations, models


def grants_kept_net(apps, schema_editor):
    """Grants batches kept before: their points are net, nothing was kept apart."""
    batches = apps.get_model("core", "ImportBatch").objects.using(schema_editor.connection.alias)
    batches.filter(kind="grants").update(taken_back=None)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0008_import_batch_figures_apart"),
    ]

    operations = [
        migrations.AddField(
            model_name="importbatch",
            name="given",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(grants_kept_net, migrations.RunPython.noop),
    ]
