"""`make serve` migrates as the tables' owner (`migrate --database owner`, docs/deploy.md),
while the application's connection stays open beside it: a data migration that wrote
through the application's connection waited for the owner's lock on its table for ever
(rewards 0012 hung the deploy). Every data migration writes through the connection it
is given."""

import inspect

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunPython

PROJECT_APPS = {"api", "core", "loyalty_site", "members", "points", "rewards", "tiers"}


def test_every_data_migration_writes_through_the_connection_it_is_given():
    loader = MigrationLoader(None, ignore_no_migrations=True)  # the files, not the database
    wrong = [
        f"{app}.{name}: {operation.code.__name__}"
        for (app, name), migration in loader.disk_migrations.items()
        if app in PROJECT_APPS
        for operation in migration.operations
        if isinstance(operation, RunPython)
        # in the function or in the helpers of its module it hands schema_editor to
        and "schema_editor.connection" not in inspect.getsource(inspect.getmodule(operation.code))
    ]
    assert not wrong, wrong
