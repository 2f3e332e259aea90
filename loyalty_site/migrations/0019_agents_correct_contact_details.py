"""CX agents (and so CX supervisors, who do everything an agent does) correct a member's
contact details: the e-mail a message bounced from, a phone, a name, a birth date (the
member page, "Can change member"). Enrolling stays with "Can add member", which also
imports members files with their opening balances, points no agent gives."""

from django.db import migrations

from loyalty_site.permission_grants import granted


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0018_send_again_permission"),
        ("members", "0030_erased_customer_codes_kept_one_way"),
    ]
    operations = [granted("members", "change_member", ["CX agent", "CX supervisor"])]
