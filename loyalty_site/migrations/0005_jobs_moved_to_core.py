"""JobRun and JobChunk now belong to core (core.0001): only the state moves."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0004_cancel_permission"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="JobChunk"),
                migrations.DeleteModel(name="JobRun"),
            ],
            database_operations=[],
        )
    ]
