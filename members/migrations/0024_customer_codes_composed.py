"""Customer codes are kept in Unicode's composed form (core.ids): the few written before
in another form ("Café-1" with e and a combining accent) are rewritten composed, so
that the code a till or a file sends, read composed, still finds them. A code whose
composed form another member has already (the same customer enrolled twice, once in
each form) is left as it is, and named in the migration's output: merge the two
accounts (M1)."""

import unicodedata

from django.db import migrations


def compose(apps, schema_editor):
    members = apps.get_model("members", "Member").objects.using(schema_editor.connection.alias)
    # Only codes with a character beyond ASCII can be written in two forms.
    beyond_ascii = members.filter(external_id__regex=r"[^\x01-\x7f]")
    for pk, code in beyond_ascii.values_list("pk", "external_id").iterator():
        composed = unicodedata.normalize("NFC", code)
        if composed == code:
            continue
        if members.filter(external_id=composed).exists():
            print(
                f"\n  Customer code {code!r} (member id {pk}) left as it is: {composed!r} "
                "is another member's; merge the two accounts"
            )
            continue
        members.filter(pk=pk).update(external_id=composed)


class Migration(migrations.Migration):
    dependencies = [("members", "0023_expiry_reminder_outdated")]
    operations = [migrations.RunPython(compose, migrations.RunPython.noop)]
