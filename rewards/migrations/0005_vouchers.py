"""W5: every redemption is a voucher. The fields, then a code and a validity for the
redemptions made before (0006 then makes both required and the code unique).

Redemptions made before vouchers existed gave the customer nothing to use: each gets a
code valid for 90 days (the reward's default) from the day this migration runs,
whatever its age, so the customers who spent points on them can use them now."""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from rewards.codes import new_code

CHUNK = 2_000
VALID_DAYS = 90


def fill_vouchers(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    Redemption = apps.get_model("rewards", "Redemption")
    valid_until = timezone.localdate() + timedelta(days=VALID_DAYS)
    taken = set()
    missing = Redemption.objects.using(db).filter(code__isnull=True).order_by("pk")
    while batch := list(missing[:CHUNK]):
        for redemption in batch:
            while (code := new_code()) in taken:
                pass  # 1 in 10^22: never, but a unique constraint comes next
            taken.add(code)
            redemption.code, redemption.valid_until = code, valid_until
        Redemption.objects.using(db).bulk_update(batch, ["code", "valid_until"])


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0004_constraint_messages'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='redemption',
            options={'ordering': ['-redeemed_at', '-pk'], 'permissions': [('cancel_redemption', 'Can cancel a redemption and refund its points'), ('use_voucher', 'Can mark a voucher used at the desk')]},
        ),
        migrations.AddField(
            model_name='redemption',
            name='code',
            field=models.CharField(editable=False, max_length=16, null=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='used_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='used_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='redemption',
            name='used_channel',
            field=models.CharField(blank=True, choices=[('pos', 'Point of sale'), ('ecommerce', 'E-commerce'), ('api', 'API'), ('import', 'Import'), ('manual', 'Manual')], max_length=10),
        ),
        migrations.AddField(
            model_name='redemption',
            name='used_external_id',
            field=models.CharField(blank=True, max_length=100, null=True, unique=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='used_store',
            field=models.CharField(blank=True, max_length=50),
        ),
        migrations.AddField(
            model_name='redemption',
            name='valid_until',
            field=models.DateField(help_text='The last day it can be used, to the end of the day in TIME_ZONE.', null=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='value',
            field=models.DecimalField(blank=True, decimal_places=2, help_text='Money it takes off at the till, as the reward said when redeemed.', max_digits=10, null=True),
        ),
        migrations.AddField(
            model_name='reward',
            name='voucher_valid_days',
            field=models.PositiveIntegerField(default=90, help_text="Days a voucher can be used after the day it is redeemed (until the end of the last day, in the programme's time zone)."),
        ),
        migrations.AddField(
            model_name='reward',
            name='voucher_value',
            field=models.DecimalField(blank=True, decimal_places=2, help_text='Money the voucher takes off at the till (5.00 for a 5 euro voucher); empty for a product or a service.', max_digits=10, null=True),
        ),
        migrations.AddConstraint(
            model_name='redemption',
            constraint=models.CheckConstraint(condition=models.Q(('used_at__isnull', True), models.Q(('status', 'cancelled'), _negated=True), _connector='OR'), name='redemption_used_or_cancelled', violation_error_message='A used voucher cannot be cancelled.'),
        ),
        migrations.AddConstraint(
            model_name='redemption',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('used_at__isnull', True), ('used_external_id__isnull', True)), models.Q(('used_at__isnull', False), ('used_external_id__isnull', False)), _connector='OR'), name='redemption_use_has_its_id', violation_error_message='A used voucher keeps the id of its use.'),
        ),
        migrations.AddConstraint(
            model_name='reward',
            constraint=models.CheckConstraint(condition=models.Q(('voucher_value__isnull', True), ('voucher_value__gt', 0), _connector='OR'), name='reward_voucher_value_positive', violation_error_message="A voucher's value is more than 0, or empty."),
        ),
        migrations.AddConstraint(
            model_name='reward',
            constraint=models.CheckConstraint(condition=models.Q(('voucher_valid_days__gte', 1), ('voucher_valid_days__lte', 3660)), name='reward_voucher_valid_days_range', violation_error_message='A voucher is valid from 1 to 3,660 days.'),
        ),
        migrations.RunPython(fill_vouchers, migrations.RunPython.noop),
    ]
