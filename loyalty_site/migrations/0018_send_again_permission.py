"""Sending refused messages again (members.send_again_notification) is a CX agent's (and
so a CX supervisor's, who does everything an agent does): the agent who corrected a
member's address sends what the mail server refused. It needed only the view of the
messages, which marketers have too."""

from django.db import migrations

from loyalty_site.permission_grants import granted


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0017_voucher_codes_out_of_member_history"),
        ("members", "0028_send_again_permission"),
    ]
    operations = [granted("members", "send_again_notification", ["CX agent", "CX supervisor"])]
