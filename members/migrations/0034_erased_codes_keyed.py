"""The digests of erased customers' codes are keyed (members.selectors.code_digest): a
plain SHA-256 of a code was undone by trying every code the brand's format allows. The
digests kept so far are keyed in place (the key is SECRET_KEY, which the migration runs
with, as every process). Going back leaves them keyed: the release before would no
longer know those codes, and a members file could enrol those customers again."""

from django.db import migrations

CHUNK = 2_000


def key_the_digests(apps, schema_editor):
    from members.selectors import keyed_digest

    Member = apps.get_model("members", "Member")
    erased = Member.objects.using(schema_editor.connection.alias).filter(erased_code__isnull=False)
    last = 0
    while chunk := list(erased.filter(pk__gt=last).order_by("pk").only("erased_code")[:CHUNK]):
        for member in chunk:
            member.erased_code = keyed_digest(member.erased_code)
        Member.objects.using(schema_editor.connection.alias).bulk_update(chunk, ["erased_code"])
        last = chunk[-1].pk


class Migration(migrations.Migration):
    dependencies = [("members", "0033_names_read_as_they_show")]

    operations = [migrations.RunPython(key_the_digests, migrations.RunPython.noop)]
