"""P3 for the marketer: campaigns that run together multiply together. Which other
active campaigns a campaign runs with, when, and what a member of each tier would earn
then, read with the rules the earning uses (Campaign.applies_to_purchase,
points_per_unit): campaigns of stores apart never stack."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.utils import timezone

from points.models import Campaign, Channel
from points.selectors import programme
from points.services.rules import MAX_PURCHASE_POINTS, points_per_unit
from tiers.models import Tier
from tiers.selectors import Ranking


@dataclass(frozen=True)
class Stack:
    """A window in which the campaign runs with `others` (on any of its channels and
    stores), and per tier the combined multiplier (tier x campaigns, at earn rate 1)
    where it is highest, with " on <channels>" when that is not on all of them."""

    starts_at: datetime
    ends_at: datetime
    others: tuple[Campaign, ...]
    earns: tuple[tuple[Tier, Decimal, str], ...]
    for_some_purchases: bool  # a campaign of the stack has stores, a minimum or birthdays
    # The amount above which a purchase at the stack's highest rate would earn more than
    # one purchase may (P2's bound), so that the till's purchase is refused; None when
    # no purchase a till may send reaches it.
    refused_above: Decimal | None = None

    def message(self) -> str:
        names = ", ".join(f"{c.name} (x{_shown(c.multiplier)})" for c in self.others)
        wheres = {where for *_, where in self.earns}
        shared = wheres.pop() if len(wheres) == 1 else None  # the same for every tier: once
        earns = ", ".join(
            f"a {tier.name} member (x{_shown(tier.multiplier)})"
            + (" would earn" if i == 0 else "")
            + f" x{_shown(rate)}"
            + (where if shared is None else "")
            for i, (tier, rate, where) in enumerate(self.earns)
        )
        if shared:
            earns += ("," if len(self.earns) > 1 else "") + shared
        audience = " on a purchase in every campaign's audience" if self.for_some_purchases else ""
        refused = (
            f" At that rate a purchase above {self.refused_above:,.2f} would earn more than "
            f"one purchase may ({MAX_PURCHASE_POINTS:,} points): the till's purchase is refused."
            if self.refused_above is not None
            else ""
        )
        return (
            f"Campaigns stack: from {_when(self.starts_at)} to {_when(self.ends_at)} this "
            f"campaign runs with {names}; {earns}{audience}.{refused}"
        )


def campaign_stacks(campaign: Campaign, ranking: Ranking) -> list[Stack]:
    """The windows in which `campaign` runs with other campaigns for a tier, channel and
    store they share, oldest first: each as it runs (Campaign.runs_until: one switched
    off ran until then). Two queries (the others and their tiers), then the campaign's
    window is cut at every start and end of the others."""
    if not campaign.ran:
        return []
    starts_at, ends_at = campaign.starts_at, campaign.runs_until
    near = Campaign.objects.earning().filter(starts_at__lt=ends_at, ends_at__gt=starts_at)
    others = [
        other
        for other in near.exclude(pk=campaign.pk).prefetch_related("tiers")
        if other.runs_until > starts_at
    ]
    inside = {t for c in others for t in (c.starts_at, c.runs_until)}
    bounds = sorted({starts_at, ends_at} | {t for t in inside if starts_at < t < ends_at})
    stacks: list[Stack] = []
    earn_rate = programme().purchase_definition.earn_rate
    for start, end in zip(bounds, bounds[1:], strict=False):
        stack = _stack_at(campaign, others, ranking, start, end, earn_rate)
        if stack is None:
            continue
        last = stacks[-1] if stacks else None
        if (
            last
            and last.ends_at == start
            and (last.others, last.earns)
            == (
                stack.others,
                stack.earns,
            )
        ):
            stacks[-1] = replace(last, ends_at=end)
        else:
            stacks.append(stack)
    return stacks


def _stack_at(campaign, others, ranking, start, end, earn_rate) -> Stack | None:
    """The stack in [start, end), a window in which the same campaigns run throughout:
    every campaign that meets this one on a purchase (channel, store) of an amount above
    every minimum by a member in their birthday month, and for each tier the highest
    rate of such a purchase, with the channels where it is reached."""
    candidates = [campaign, *others]
    amount = max((c.min_amount for c in candidates if c.min_amount), default=Decimal(1))
    birthday = timezone.localdate(start)
    stores = sorted({store for c in candidates for store in c.stores}) + [""]  # "": any other
    channels = campaign.channels or Channel.values
    together, earns = set(), []
    for tier in ranking.tiers:
        best, best_on = None, set()
        for channel in channels:
            for store in campaign.stores or stores:
                running = [
                    c
                    for c in candidates
                    if c.applies_to_purchase(
                        at=start,
                        tier_id=tier.pk,
                        channel=channel,
                        store=store,
                        amount=amount,
                        birth_date=birthday,
                    )
                ]
                if len(running) < 2 or running[0] is not campaign:
                    continue
                together.update(running[1:])  # named wherever they meet, not only at the best
                multipliers = [c.multiplier for c in running]
                rate = points_per_unit(Decimal(1), tier.multiplier, multipliers)
                if best is None or rate > best:
                    best, best_on = rate, {channel}
                elif rate == best:
                    best_on.add(channel)
        if best is not None:
            earns.append((tier, best, _on(best_on, channels)))
    if not earns:
        return None
    others_in = tuple(sorted(together, key=lambda c: (c.starts_at, c.pk)))
    audience = any(
        c.stores or c.min_amount or c.birthday_month_only for c in (campaign, *others_in)
    )
    refused_above = _refused_above(earns, earn_rate)
    return Stack(start, end, others_in, tuple(earns), audience, refused_above)


def _refused_above(earns, earn_rate: Decimal) -> Decimal | None:
    """Stack.refused_above, at the programme's earn rate."""
    per_unit = max(rate for _, rate, _ in earns) * earn_rate
    if not per_unit:
        return None
    limit = (MAX_PURCHASE_POINTS / per_unit).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return limit if limit < settings.MAX_TRANSACTION_AMOUNT else None


def _on(best_on: set[str], channels) -> str:
    """ " on E-commerce" when the best rate is reached on some of the channels only."""
    if best_on >= set(channels):
        return ""
    labels = dict(Channel.choices)
    return " on " + " or ".join(labels[c] for c in Channel.values if c in best_on)


def _shown(number: Decimal) -> str:
    return f"{number.normalize():,f}"  # x1,440,000: a stack a marketer can read


def _when(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b %Y, %H:%M}"
