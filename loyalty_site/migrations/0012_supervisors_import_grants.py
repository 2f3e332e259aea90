"""G4: a point-grants file above a CX agent's goodwill limit is imported by someone
whose limits cover it, a CX supervisor (the refusal says so): supervisors may import
point grants, as marketers may."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    config = apps.get_app_config("points")
    config.models_module = True
    create_permissions(config, verbosity=0, using=db)
    config.models_module = None
    permission = apps.get_model("auth", "Permission").objects.using(db)
    import_grants = permission.get(content_type__app_label="points", codename="import_grants")
    for group in apps.get_model("auth", "Group").objects.using(db).filter(name="CX supervisor"):
        group.permissions.add(import_grants)


def revoke(apps, schema_editor):
    db = schema_editor.connection.alias
    permission = apps.get_model("auth", "Permission").objects.using(db)
    import_grants = permission.filter(content_type__app_label="points", codename="import_grants")
    for group in apps.get_model("auth", "Group").objects.using(db).filter(name="CX supervisor"):
        group.permissions.remove(*import_grants)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0011_cx_supervisor_group"),
        ("points", "0020_accrue_delay_at_most_ten_years"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
