"""Governance of manual points: the "CX supervisor" group. A supervisor does what a CX
agent does and also approves or rejects the adjustments above an agent's goodwill
limit, grants status matches and freezes members (pausing degradation and expiry):
decisions that cost the programme money, kept away from the agent who asked."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AGENT, SUPERVISOR = "CX agent", "CX supervisor"
SUPERVISOR_ONLY = [
    ("points", "approve_adjustment"),
    ("points", "view_adjustmentrequest"),
    ("tiers", "grant_status"),
    ("tiers", "view_statusgrant"),
    ("members", "freeze_member"),
]


def create_group(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission").objects.using(db)
    supervisor, _ = Group.objects.using(db).get_or_create(name=SUPERVISOR)
    agent = Group.objects.using(db).filter(name=AGENT).first()
    if agent:
        supervisor.permissions.add(*agent.permissions.all())
        # Agents see the requests they sent (and their decision) on the member page.
        agent.permissions.add(
            Permission.get(content_type__app_label="points", codename="view_adjustmentrequest")
        )
    supervisor.permissions.add(
        *[
            Permission.get(content_type__app_label=app, codename=codename)
            for app, codename in SUPERVISOR_ONLY
        ]
    )


def drop_group(apps, schema_editor):
    db = schema_editor.connection.alias
    group = apps.get_model("auth", "Group").objects.using(db).filter(name=SUPERVISOR).first()
    if group is None:
        return
    # Row by row, not Group.delete(): the deletion collector would follow the goodwill
    # limits' relation through another rendering of the historical models.
    apps.get_model("points", "AdjustmentLimit").objects.using(db).filter(group_id=group.pk).delete()
    group.permissions.clear()
    group.user_set.clear()
    schema_editor.execute("DELETE FROM auth_group WHERE id = %s", [group.pk])


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0010_use_voucher_permission"),
        ("members", "0012_member_status_match_and_freeze"),
        ("points", "0017_goodwill_limits_and_requests"),
        ("tiers", "0004_status_grant"),
    ]
    operations = [migrations.RunPython(create_group, drop_group)]
