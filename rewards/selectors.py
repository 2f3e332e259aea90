from dataclasses import dataclass
from datetime import time

from django.db.models import Q
from django.utils import timezone

from points.selectors import balances
from rewards.codes import is_code, normalized
from rewards.models import Redemption, Reward
from tiers.selectors import Ranking


@dataclass(frozen=True)
class CatalogueItem:
    reward: Reward
    locked_because: str | None  # None: redeemable now

    @property
    def redeemable(self) -> bool:
        return self.locked_because is None


def in_window(now):
    return (
        Q(is_active=True)
        & (Q(available_from__isnull=True) | Q(available_from__lte=now))
        & (Q(available_until__isnull=True) | Q(available_until__gt=now))
    )


def _moment(at) -> str:
    """A reward's start as the customer is told it: the day, and the time unless it is
    the day's start ("7 December 2026 at 18:00": today, later)."""
    local = timezone.localtime(at)
    return f"{local:%-d %B %Y}" + ("" if local.time() == time(0) else f" at {local:%H:%M}")


def locked_because(
    reward: Reward, *, effective_tier_id: int, available: int, pending: int, ranking: Ranking, now
) -> str | None:
    """Why the member cannot redeem the reward now, in words a CX agent reads to the
    customer; None when they can. The one place of the rules W1-W3 and P5."""
    if not reward.is_active:
        return "No longer offered"
    if reward.available_from and now < reward.available_from:
        return f"Available from {_moment(reward.available_from)}"
    if reward.available_until and now >= reward.available_until:
        return "No longer available"
    if reward.min_tier_id and ranking.higher(reward.min_tier_id, effective_tier_id):
        return f"Needs {ranking.by_pk[reward.min_tier_id].name}"
    if reward.stock is not None and reward.stock <= 0:
        return "Out of stock"
    if available < reward.points_cost:
        if available + pending >= reward.points_cost:
            return "Points still pending"
        return f"Needs {reward.points_cost - available:,} more points"
    return None


def catalogue(member, *, now=None, ranking=None, figures=None) -> list[CatalogueItem]:
    """W2: every active reward in its window, each redeemable or locked with the reason.
    `ranking` and `figures` (Balances): when the caller has read them already."""
    now = now or timezone.now()
    ranking = ranking or Ranking()
    available, pending = figures or balances(member, now=now)
    return [
        CatalogueItem(
            reward,
            locked_because(
                reward,
                effective_tier_id=member.effective_tier_id,
                available=available,
                pending=pending,
                ranking=ranking,
                now=now,
            ),
        )
        for reward in Reward.objects.filter(in_window(now)).select_related("min_tier")
    ]


def voucher(code: str) -> Redemption | None:
    """The redemption whose voucher has this code, as a person or a till typed it
    (lower case, dashes, spaces: rewards.codes); None when there is none."""
    code = normalized(code)
    if not is_code(code):
        return None
    redemptions = Redemption.objects.select_related("member__merged_into")
    return redemptions.filter(code=code).first()
