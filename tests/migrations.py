"""Tests of a data migration: the database taken back to the migration before it, rows
written as they were then, and the migration applied to them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    """The database migrated to `targets` ([(app, migration)]); the models as they were
    there (apps.get_model)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    """The database as every other test expects it: every migration applied."""
    return migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.fixture
def latest_after():
    """The database as every other test expects it, whatever this one left."""
    yield
    migrate_to_latest()
