"""Tier names as the tier page saves them (core.staff_input.tidy_name): composed letters
and one plain space between words. Names saved before may differ from another only in
their spaces ("Rose Gold" and "Rose\u00a0Gold", a non-breaking space pasted from a
design tool): the page refused any later save of the second until it was renamed, and
members saw two tiers named alike. As 0011 does, the tier named first keeps its name and
another gets its code after it ("Rose Gold (rose-2)")."""

import unicodedata
from importlib import import_module

from django.db import migrations

free_name = import_module("tiers.migrations.0011_tier_name_unique_any_case").free_name


def tidy(name: str) -> str:
    """As core.staff_input.tidy_name (a migration reads no application code)."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def tidy_names(apps, schema_editor):
    db = schema_editor.connection.alias  # the tables' owner's, in production
    Tier = apps.get_model("tiers", "Tier")
    tiers = list(Tier.objects.using(db).order_by("pk"))
    names = {tier.pk: tidy(tier.name) or tier.code for tier in tiers}
    taken, kept_later, renamed = set(), [name.lower() for name in names.values()], {}
    for tier in tiers:
        name = names[tier.pk]
        kept_later.remove(name.lower())
        if name.lower() in taken:
            name = free_name(name, tier.code, taken | set(kept_later))
            renamed[tier.pk] = name
        taken.add(name.lower())
        names[tier.pk] = name
    # The tiers named apart first: a tidied name may be the one another holds until then.
    order = sorted(tiers, key=lambda tier: tier.pk not in renamed)
    for tier in order:
        if names[tier.pk] != tier.name:
            Tier.objects.using(db).filter(pk=tier.pk).update(name=names[tier.pk])


class Migration(migrations.Migration):
    dependencies = [
        ("tiers", "0019_multiplier_says_its_lower_bound"),
    ]

    operations = [migrations.RunPython(tidy_names, migrations.RunPython.noop)]
