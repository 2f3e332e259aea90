"""The two staff roles of the CX Manager. A superuser adds staff users to them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW, ALL = ["view"], ["add", "change", "delete", "view"]

ROLES = {
    "CX agent": {
        "members": {"member": VIEW, "tierchange": VIEW, "notification": VIEW},
        "points": {
            "ledgerentry": ["view", "assign_points"],
            "transaction": ["view", "add"],  # add = import transactions
            "pointdefinition": VIEW,
            "campaign": VIEW,
        },
        "rewards": {"reward": VIEW, "redemption": ["view", "add", "change"]},  # change = cancel
        # No tier or policy pages: an agent reads a member's tier on the member page.
    },
    "Marketer": {
        "members": {"member": VIEW, "tierchange": VIEW, "notification": VIEW},
        "points": {
            "ledgerentry": VIEW,
            "transaction": VIEW,
            "pointdefinition": ALL,
            "campaign": ALL,
            "expirypolicy": ["view", "change"],
            "expiryrun": VIEW,
        },
        "rewards": {"reward": ALL, "redemption": VIEW},
        "tiers": {"tier": ALL, "degradationpolicy": ["view", "change"]},
    },
}


def codename(action, model):
    return action if "_" in action else f"{action}_{model}"


def create_roles(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    # Permissions are made after migrations run; make them now so the groups can name them.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in ROLES.items():
        group, _ = Group.objects.using(db).get_or_create(name=role)
        for app_label, models in grants.items():
            for model, actions in models.items():
                group.permissions.add(
                    *[
                        Permission.objects.using(db).get(
                            content_type__app_label=app_label, codename=codename(action, model)
                        )
                        for action in actions
                    ]
                )


def drop_roles(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(db).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("members", "0004_member_search"),
        ("points", "0005_alter_ledgerentry_options"),
        ("rewards", "0001_initial"),
        ("tiers", "0002_initial_rows"),
    ]
    operations = [migrations.RunPython(create_roles, drop_roles)]
