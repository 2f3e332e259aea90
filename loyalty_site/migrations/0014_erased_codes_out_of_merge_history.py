"""An account merged into another and erased later on its own left its old customer code
in what its merge wrote: the admin history of the account it was merged into ("Merged
M-OLD into this member: ...") and a status match carried over ("Carried over from M-OLD
(merged): ..."); and a message the mail server had refused kept the refused address in
why, after the erasure. The erasure renames them since (members.services.erase_member);
this renames those written before.

For each erased account merged into another, the code the first merge line of that
account's history after the merge names ("Merged <code> into this member") was the
erased account's. When no member has that code now (it was erased, not renamed since),
it is renamed to the erased account's code wherever the accounts merged with it name
it, whole: never inside a longer code."""

import re

from django.db import migrations

MERGED_IN = re.compile(r"^Merged (?P<code>.+?) into this member: ")
REFUSED = "Erased with the member's personal data"


def rename_erased_codes(apps, schema_editor):
    db = schema_editor.connection.alias
    members = apps.get_model("members", "Member").objects.using(db)
    log = apps.get_model("admin", "LogEntry").objects.using(db)
    grants = apps.get_model("tiers", "StatusGrant").objects.using(db)
    notifications = apps.get_model("members", "Notification").objects.using(db)
    notifications.filter(member__erased_at__isnull=False).exclude(last_error="").update(
        last_error=REFUSED
    )
    content_type = (
        apps.get_model("contenttypes", "ContentType")
        .objects.using(db)
        .filter(app_label="members", model="member")
        .first()
    )
    if content_type is None:
        return  # a new database: no history yet
    history = log.filter(content_type=content_type)
    erased = members.filter(
        erased_at__isnull=False, merge_survivor__isnull=False, merged_at__isnull=False
    )
    rows = erased.values_list("pk", "external_id", "merge_survivor", "merged_into", "merged_at")
    for pk, code, survivor, merged_into, merged_at in rows.iterator():
        line = (
            history.filter(
                object_id=str(survivor),
                action_time__gte=merged_at,
                change_message__contains=" into this member: ",
            )
            .order_by("action_time", "pk")
            .values_list("change_message", flat=True)
            .first()
        )
        found = MERGED_IN.match(line or "")
        if found is None or found["code"] == code:
            continue
        old = found["code"]
        if members.filter(external_id=old).exists():
            continue  # another member's code: not this account's
        kept = merged_into or pk
        family = [kept, *members.filter(merged_into=kept).values_list("pk", flat=True)]
        whole = re.compile(rf"(?<![\w-]){re.escape(old)}(?![\w-])")
        for entry, message in history.filter(object_id__in=[str(m) for m in family]).values_list(
            "pk", "change_message"
        ):
            if (new := whole.sub(lambda _: code, message)) != message:
                history.filter(pk=entry).update(change_message=new)
        for grant, reason in grants.filter(member__in=family).values_list("pk", "reason"):
            if (new := whole.sub(lambda _: code, reason)) != reason:
                grants.filter(pk=grant).update(reason=new)


class Migration(migrations.Migration):
    dependencies = [
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("members", "0024_customer_codes_composed"),
        ("tiers", "0013_threshold_at_most_a_billion"),
        ("loyalty_site", "0013_admin_history_index"),
    ]
    operations = [migrations.RunPython(rename_erased_codes, migrations.RunPython.noop)]
