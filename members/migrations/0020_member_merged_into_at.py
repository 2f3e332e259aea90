from django.db import migrations, models
from django.db.models import F


def from_their_own_merge(apps, schema_editor):
    """Accounts merged before: from their own merge, as the page counted them (which
    later merge repointed one is not known)."""
    Member = apps.get_model("members", "Member")
    # On the migration's own connection (the tables' owner, docs/deploy.md): another one
    # would wait for this migration's lock on the table, which waits for it.
    members = Member.objects.using(schema_editor.connection.alias)
    members.filter(merged_into__isnull=False).update(merged_into_at=F("merged_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0019_member_held_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="member",
            name="merged_into_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(from_their_own_merge, migrations.RunPython.noop),
    ]
