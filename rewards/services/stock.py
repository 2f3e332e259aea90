"""A reward's stock (W1): units taken by redemptions (W3), given back by cancellations
(W4) and by vouchers that expired unused (W6)."""

from django.db.models import F, Value
from django.db.models.functions import Least

from rewards.models import MAX_STOCK, Reward


def return_units(reward_id: int, units: int) -> None:
    """Put `units` back in the reward's stock; nothing for a reward without one
    (unlimited). Never above the most a marketer may set: the reward's page must still
    save."""
    Reward.objects.filter(pk=reward_id, stock__isnull=False).update(
        stock=Least(F("stock") + units, Value(MAX_STOCK))
    )
