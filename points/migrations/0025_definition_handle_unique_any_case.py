"""Point definition handles are unique whatever their case (P1), as tier codes are.

Definitions saved before may break that ("Review" and "review"). The system
definitions (found by their handle) and then the oldest keep theirs; another gets a
number after it ("Review-2"), the first free one, so that the upgrade never fails. A
file or a caller that named the renamed one must use its new handle."""

import django.db.models.functions.text
from django.db import migrations, models

HANDLE_LENGTH = 50
SYSTEM_HANDLES = ("manual-adjustment", "tier-up-bonus", "opening-balance")


def unique_handles(apps, schema_editor):
    # The database being migrated (`migrate --database owner`), not the application's.
    db = schema_editor.connection.alias
    Definition = apps.get_model("points", "PointDefinition")
    definitions = sorted(
        Definition.objects.using(db).all(), key=lambda d: (d.handle not in SYSTEM_HANDLES, d.pk)
    )
    # A new handle must not take one a later definition keeps.
    kept_later = [d.handle.lower() for d in definitions]
    taken = set()
    for definition in definitions:
        handle = definition.handle
        kept_later.remove(handle.lower())
        if handle.lower() in taken:
            handle = next(
                candidate
                for n in range(2, 10_000)
                if (candidate := f"{handle[: HANDLE_LENGTH - len(str(n)) - 1]}-{n}").lower()
                not in taken | set(kept_later)
            )
            Definition.objects.using(db).filter(pk=definition.pk).update(handle=handle)
        taken.add(handle.lower())


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0024_campaign_multiplier_and_minimum_at_most"),
    ]

    operations = [
        migrations.RunPython(unique_handles, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="pointdefinition",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("handle"),
                name="definition_handle_unique_any_case",
                violation_error_message="Another point definition has this handle: "
                "handles are unique whatever their case.",
            ),
        ),
    ]
