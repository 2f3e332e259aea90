"""A freeze is noted in the member's admin history with its reason ("Frozen until 4 Jan
2027: Hospital stay"; a merge: "M-OLD's freeze until 4 Jan 2027 (Hospital stay) goes on
here"), which an erasure removed from the member row but left there. The erasure
removes it since (members.services.without_freeze_reasons); this removes it from the
history of every account of the customers erased before."""

import re

from django.db import migrations

ERASED_REASON = "Erased with the member's personal data"
# As members.services writes the notes (copied: a migration keeps what it ran with).
FREEZE_REASON = re.compile(
    r"(^Frozen until [^:]*: |'s freeze until [^(]* \().+?(\) goes on here|$)", re.S
)


def remove_erased_freeze_reasons(apps, schema_editor):
    db = schema_editor.connection.alias
    members = apps.get_model("members", "Member").objects.using(db)
    content_type = (
        apps.get_model("contenttypes", "ContentType")
        .objects.using(db)
        .filter(app_label="members", model="member")
        .first()
    )
    if content_type is None:
        return  # a new database: no history yet
    history = apps.get_model("admin", "LogEntry").objects.using(db).filter(
        content_type=content_type
    )
    erased = members.filter(erased_at__isnull=False).values_list("pk", "merged_into")
    for pk, merged_into in erased.iterator():
        kept = merged_into or pk
        family = [kept, *members.filter(merged_into=kept).values_list("pk", flat=True)]
        notes = history.filter(object_id__in=[str(m) for m in family])
        for entry, message in notes.values_list("pk", "change_message"):
            new = FREEZE_REASON.sub(lambda noted: noted[1] + ERASED_REASON + noted[2], message)
            if new != message:
                history.filter(pk=entry).update(change_message=new)


class Migration(migrations.Migration):
    dependencies = [("loyalty_site", "0014_erased_codes_out_of_merge_history")]
    operations = [migrations.RunPython(remove_erased_freeze_reasons, migrations.RunPython.noop)]
