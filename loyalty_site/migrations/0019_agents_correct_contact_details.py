"""CX agents (and so CX supervisors, who do everything an agent does) correct a member's
contact details: the e-mail a message bounced from, a phone, a name, a birth date (the
member page, "Can change member"). Enrolling stays with "Can add member", which also
imports members files with their opening balances, points no agent gives."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ["CX agent", "CX supervisor"]
CODENAME = "change_member"


def _permission(apps, db):
    return (
        apps.get_model("auth", "Permission")
        .objects.using(db)
        .filter(content_type__app_label="members", codename=CODENAME)
        .first()
    )


def grant(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    permission = _permission(apps, db)
    for group in apps.get_model("auth", "Group").objects.using(db).filter(name__in=GROUPS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    db = schema_editor.connection.alias
    if permission := _permission(apps, db):
        for group in apps.get_model("auth", "Group").objects.using(db).filter(name__in=GROUPS):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0018_send_again_permission"),
        ("members", "0030_erased_customer_codes_kept_one_way"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
