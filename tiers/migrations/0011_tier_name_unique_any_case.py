"""Tier names are unique whatever their case, and hold no invisible character (T1).

Tiers saved before may break that: the invisible characters are dropped from a name
(nobody could see them; a name of nothing else becomes the tier's code), and a name
another tier already has, whatever its case, gets the tier's code after it ("Gold" and
"gold" become "Gold" and "gold (gold-2)"). The tier named first keeps its name."""

import unicodedata

import django.db.models.functions.text
from django.db import migrations, models

NAME_LENGTH = 60


def visible(name: str) -> str:
    """The name without format or control characters (core.staff_input.invisible)."""
    return "".join(char for char in name if unicodedata.category(char) not in ("Cf", "Cc")).strip()


def free_name(name: str, code: str, taken: set[str]) -> str:
    """`name (code)`, shortened to fit, with a number after it if that is taken too."""
    for n in range(1, 1000):
        suffix = f" ({code})" if n == 1 else f" ({code} {n})"
        candidate = name[: NAME_LENGTH - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
    raise ValueError(f"No free name for the tier {code}")  # 999 tiers named alike


def unique_visible_names(apps, schema_editor):
    # The database being migrated (`migrate --database owner`), not the application's.
    db = schema_editor.connection.alias
    Tier = apps.get_model("tiers", "Tier")
    tiers = list(Tier.objects.using(db).order_by("pk"))
    # Every name as it will stay: a new name must not take one a later tier keeps.
    names = {tier.pk: visible(tier.name) or tier.code for tier in tiers}
    taken = set()
    kept_later = [name.lower() for name in names.values()]
    for tier in tiers:
        name = names[tier.pk]
        kept_later.remove(name.lower())
        if name.lower() in taken:
            name = free_name(name, tier.code, taken | set(kept_later))
        taken.add(name.lower())
        if name != tier.name:
            Tier.objects.using(db).filter(pk=tier.pk).update(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("tiers", "0010_multiplier_at_most_x100"),
    ]

    operations = [
        migrations.RunPython(unique_visible_names, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="tier",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("name"),
                name="tier_name_unique_any_case",
                violation_error_message="Another tier has this name: names are unique "
                "whatever their case.",
            ),
        ),
    ]
