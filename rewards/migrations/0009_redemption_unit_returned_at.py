"""W6: a redemption records when its voucher let go of its reward's unit. Those
cancelled before let go of it when they were cancelled (W4); the vouchers that had
expired unused give theirs back at the nightly job's first run."""

from django.db import migrations, models
from django.db.models import F


def cancelled_let_go(apps, schema_editor):
    redemptions = apps.get_model("rewards", "Redemption").objects
    redemptions.using(schema_editor.connection.alias).filter(status="cancelled").update(
        unit_returned_at=F("cancelled_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0008_reward_cost_and_voucher_value_at_most"),
    ]

    operations = [
        migrations.AddField(
            model_name="redemption",
            name="unit_returned_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="unit back in stock"),
        ),
        migrations.RunPython(cancelled_let_go, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="redemption",
            index=models.Index(
                condition=models.Q(
                    ("status", "redeemed"),
                    ("unit_returned_at__isnull", True),
                    ("used_at__isnull", True),
                ),
                fields=["valid_until"],
                name="redemption_holding_a_unit",
            ),
        ),
    ]
