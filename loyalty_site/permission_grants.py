"""Data migrations that give staff groups a permission (DESIGN.md, Admin: the groups are
made by data migrations): one operation, so that each such migration says only which
permission goes to which groups. Kept as it is: the migrations using it run it as they
were written."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def granted(app_label: str, codename: str, groups: list[str]) -> migrations.RunPython:
    """Give `groups` the permission app_label.codename, creating the permissions first
    (migrate creates those of new models only after its last migration); unapplied, take
    it back. Written through the migration's own connection: `migrate --database owner`
    writes as the owner."""

    def permission(apps, db):
        return (
            apps.get_model("auth", "Permission")
            .objects.using(db)
            .filter(content_type__app_label=app_label, codename=codename)
            .first()
        )

    def to_groups(apps, db):
        return apps.get_model("auth", "Group").objects.using(db).filter(name__in=groups)

    def grant(apps, schema_editor):
        db = schema_editor.connection.alias
        for config in apps.get_app_configs():
            config.models_module = True
            create_permissions(config, verbosity=0, using=db)
            config.models_module = None
        given = permission(apps, db)
        for group in to_groups(apps, db):
            group.permissions.add(given)

    def revoke(apps, schema_editor):
        db = schema_editor.connection.alias
        if taken := permission(apps, db):
            for group in to_groups(apps, db):
                group.permissions.remove(taken)

    return migrations.RunPython(grant, revoke)
