"""Sending refused messages again (members.send_again_notification) is a CX agent's (and
so a CX supervisor's, who does everything an agent does): the agent who corrected a
member's address sends what the mail server refused. It needed only the view of the
messages, which marketers have too."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ["CX agent", "CX supervisor"]
CODENAME = "send_again_notification"


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
        ("loyalty_site", "0017_voucher_codes_out_of_member_history"),
        ("members", "0028_send_again_permission"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
