# Import files move from MEDIA_ROOT, which the web server in front of the app serves,
# to IMPORTS_ROOT, which nothing serves: they hold customers' personal data.

from django.core.files.storage import default_storage
from django.db import migrations, models

import core.private_files


def _move(apps, schema_editor, source, target):
    batches = apps.get_model("core", "ImportBatch").objects.using(schema_editor.connection.alias)
    left = []
    for names in batches.exclude(file="", errors_file="").values_list("file", "errors_file"):
        for name in filter(None, names):
            if source.exists(name) and not target.exists(name):
                with source.open(name, "rb") as kept:
                    target.save(name, kept)
                source.delete(name)
            elif not target.exists(name) or source.exists(name):
                left.append(name)
    if left:  # run where both folders are mounted (docs/deploy.md, A release)
        print(
            f"\n  {len(left)} import file(s) not moved (not found where they were kept, or "
            f"already in the other folder), first {left[0]}: their pages say so"
        )


def to_private(apps, schema_editor):
    _move(apps, schema_editor, default_storage, core.private_files.PrivateFiles())


def to_media(apps, schema_editor):
    _move(apps, schema_editor, core.private_files.PrivateFiles(), default_storage)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0010_import_batch_given_back"),
    ]

    operations = [
        migrations.AlterField(
            model_name="importbatch",
            name="errors_file",
            field=models.FileField(
                blank=True,
                max_length=300,
                storage=core.private_files.PrivateFiles(),
                upload_to=core.private_files.stored_name,
            ),
        ),
        migrations.AlterField(
            model_name="importbatch",
            name="file",
            field=models.FileField(
                max_length=300,
                storage=core.private_files.PrivateFiles(),
                upload_to=core.private_files.stored_name,
            ),
        ),
        migrations.RunPython(to_private, to_media),
    ]
