"""What an upgrade leaves to finish once the release before has stopped.

Rewards 0012 named the redemptions made before it and marked those that took a unit;
the web of the release before, serving until its restart (docs/deploy.md), still wrote
redemptions without either: the columns' database defaults, an empty name and no unit.
Only that release writes an empty name."""

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce, Substr

from points.models import LedgerEntry
from rewards.models import Redemption, Reward
from rewards.services.redemption import REDEEMED


@transaction.atomic
def name_redemptions_of_the_release_before() -> int:
    """Name the redemptions written without a name, as rewards 0012 named the older
    ones: the name their ledger line gave when they were redeemed, and a unit taken
    where the reward has a stock today. Safe to run again: it finds none then. Returns
    how many it named."""
    unnamed = Redemption.objects.filter(reward_name="")
    unnamed.filter(reward__stock__isnull=False).update(took_unit=True)
    line = LedgerEntry.objects.filter(pk=OuterRef("entry_id"), reason__startswith=REDEEMED)
    then = line.values(name=Substr("reason", len(REDEEMED) + 1, 100))[:1]  # the column's size
    today = Reward.objects.filter(pk=OuterRef("reward_id")).values("name")[:1]
    return unnamed.update(reward_name=Coalesce(Subquery(then), Subquery(today)))
