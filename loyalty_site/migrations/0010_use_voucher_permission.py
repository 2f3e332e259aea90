"""W5 at the desk: CX agents may mark a customer's voucher used (rewards.use_voucher),
as they redeem and cancel. Marketers see vouchers but do not use them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    config = apps.get_app_config("rewards")
    config.models_module = True
    create_permissions(config, verbosity=0, using=db)
    config.models_module = None
    use = apps.get_model("auth", "Permission").objects.using(db).get(
        content_type__app_label="rewards", codename="use_voucher"
    )
    for group in apps.get_model("auth", "Group").objects.using(db).filter(name="CX agent"):
        group.permissions.add(use)


def revoke(apps, schema_editor):
    apps.get_model("auth", "Permission").objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="rewards", codename="use_voucher"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0009_merge_permission"),
        ("rewards", "0006_voucher_codes_required"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
