"""The member list of one tier, newest first, from an index: built without blocking the
members' writes on PostgreSQL (CONCURRENTLY: a few seconds at a million members, while
tills keep selling); elsewhere as any index."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexWithoutBlocking(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            # A build stopped (MIGRATE_LOCK_TIMEOUT) leaves its index behind, invalid: the
            # same command run again builds it anew instead of failing on its name.
            name = schema_editor.quote_name(self.index.name)
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("members", "0026_lifetime_indexes_end_with_id"),
    ]

    operations = [
        AddIndexWithoutBlocking(
            model_name="member",
            index=models.Index(fields=["effective_tier", "id"], name="member_tier_newest"),
        ),
    ]
