from django.db import migrations, models


class Migration(migrations.Migration):
    """Apart from 0012: on PostgreSQL an index cannot be built in the transaction that
    filled the redemptions' new columns (their deferred checks are pending)."""

    dependencies = [
        ('rewards', '0012_redemption_keeps_name_and_unit'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='redemption',
            index=models.Index(condition=models.Q(('status', 'redeemed'), ('took_unit', True), ('unit_returned_at__isnull', True), ('used_at__isnull', True)), fields=['valid_until'], name='redemption_holding_a_unit'),
        ),
    ]
