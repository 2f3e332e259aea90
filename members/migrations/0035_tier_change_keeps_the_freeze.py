from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery


def keep_the_freezes_read_so_far(apps, schema_editor):
    """Drops recorded before: the member's freeze as their explanation read it until now
    (one that ended by the drop), kept on the drop, which a later freeze no longer
    changes. Only frozen members' drops: a few rows."""
    TierChange = apps.get_model("members", "TierChange")
    Member = apps.get_model("members", "Member")
    db = schema_editor.connection.alias
    freeze = Member.objects.using(db).filter(pk=OuterRef("member_id")).values("frozen_until")
    TierChange.objects.using(db).filter(
        reason="degradation", member__frozen_until__lte=F("changed_at")
    ).update(frozen_until=Subquery(freeze[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0034_erased_codes_keyed"),
    ]

    operations = [
        migrations.AddField(
            model_name="tierchange",
            name="frozen_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(keep_the_freezes_read_so_far, migrations.RunPython.noop),
    ]
