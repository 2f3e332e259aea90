"""A redemption from the member page was noted in the member's admin history with its
voucher's code ("Redeemed Coffee voucher: voucher AVJ5-4X3P-3C74-XJ8Y, valid until 6 Mar
2027"), which everyone who may view members reads, Operations too, to whom codes are
not shown (a code is money at a till). The note names the redemption since
(loyalty_site.member_actions); this takes the code out of the notes written before."""

import re

from django.db import migrations

# As loyalty_site.member_actions wrote the notes (copied: a migration keeps what it ran with).
WITH_CODE = re.compile(r"^(Redeemed .+): voucher [A-Z0-9-]+, valid until \d{1,2} \w{3} \d{4}$", re.S)


def remove_voucher_codes(apps, schema_editor):
    db = schema_editor.connection.alias
    content_type = (
        apps.get_model("contenttypes", "ContentType")
        .objects.using(db)
        .filter(app_label="members", model="member")
        .first()
    )
    if content_type is None:
        return  # a new database: no history yet
    notes = apps.get_model("admin", "LogEntry").objects.using(db).filter(
        content_type=content_type, change_message__startswith="Redeemed ", action_flag=2
    )
    for entry, message in notes.values_list("pk", "change_message").iterator():
        if noted := WITH_CODE.match(message):
            notes.filter(pk=entry).update(change_message=noted[1])


class Migration(migrations.Migration):
    dependencies = [("loyalty_site", "0016_warm_dashboard_every_minute")]
    operations = [migrations.RunPython(remove_voucher_codes, migrations.RunPython.noop)]
