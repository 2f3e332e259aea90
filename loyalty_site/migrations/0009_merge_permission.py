"""Merging duplicate accounts (members.merge_member) is a CX agent's: joining a
customer's two accounts is among the requests agents hear most, the customer is on the
line, and an agent may already move more points by hand (Assign points). The merge is
confirmed on a page, needs a reason, and stays in both members' admin history.
Marketers and Operations do not merge."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "CX agent"


def grant(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    merge = apps.get_model("auth", "Permission").objects.using(db).get(
        content_type__app_label="members", codename="merge_member"
    )
    for group in apps.get_model("auth", "Group").objects.using(db).filter(name=GROUP):
        group.permissions.add(merge)


def revoke(apps, schema_editor):
    db = schema_editor.connection.alias
    merge = (
        apps.get_model("auth", "Permission")
        .objects.using(db)
        .filter(content_type__app_label="members", codename="merge_member")
        .first()
    )
    if merge:
        for group in apps.get_model("auth", "Group").objects.using(db).filter(name=GROUP):
            group.permissions.remove(merge)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0008_imports_view"),
        ("members", "0011_member_merge"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
