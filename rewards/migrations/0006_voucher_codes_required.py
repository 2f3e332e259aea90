"""W5: every redemption has a code (unique) and a validity, now that 0005 gave them to
the redemptions made before. A new redemption draws its code from rewards.codes. The
redemption list (newest first, filtered by voucher status) reads an index of its own."""

import rewards.codes
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0005_vouchers'),
    ]

    operations = [
        migrations.AlterField(
            model_name='redemption',
            name='code',
            field=models.CharField(default=rewards.codes.new_code, editable=False, max_length=16, unique=True),
        ),
        migrations.AlterField(
            model_name='redemption',
            name='valid_until',
            field=models.DateField(help_text='The last day it can be used, to the end of the day in TIME_ZONE.'),
        ),
        migrations.AddIndex(
            model_name='redemption',
            index=models.Index(fields=['-redeemed_at', '-id'], name='redemption_newest_first'),
        ),
    ]
