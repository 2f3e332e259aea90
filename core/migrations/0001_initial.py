"""JobRun and JobChunk, moved from loyalty_site: the tables stay where they are."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("loyalty_site", "0003_job_runs")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="JobRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("job", models.CharField(max_length=40)),
                        ("key", models.CharField(max_length=40)),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "loyalty_site_jobrun",
                        "constraints": [
                            models.UniqueConstraint(fields=("job", "key"), name="job_run_unique_key")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="JobChunk",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("first_id", models.BigIntegerField()),
                        ("last_id", models.BigIntegerField()),
                        ("done_at", models.DateTimeField(blank=True, null=True)),
                        ("result", models.BigIntegerField(blank=True, null=True)),
                        (
                            "run",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="chunks",
                                to="core.jobrun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "loyalty_site_jobchunk",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("run", "first_id"), name="job_chunk_unique_range"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        )
    ]
