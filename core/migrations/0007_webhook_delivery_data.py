"""What a member.erased delivery tells (the code before the erasure), kept on the
delivery until it is delivered or given up. A nullable column: PostgreSQL adds it
without rewriting the table."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0006_import_batch_progress_in_cache'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookdelivery',
            name='data',
            field=models.JSONField(blank=True, null=True),
        ),
    ]
