"""Redemption (W3): points spent on a reward, which gives a voucher (W5). Points move
through points.services."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.defaultfilters import pluralize
from django.utils import timezone

from core import events
from core.ids import canonical_id, readable_id
from core.refusals import CONFLICT
from members.selectors import owner
from points.selectors import balances
from points.services import lock_member, post_redemption
from points.services.rules import check_spends
from rewards.models import Redemption, Reward
from rewards.selectors import locked_because
from tiers.services import TierLog, follow_new_rules

# The redemption's ledger line: "Redeemed Coffee voucher" (rewards.services.upgrade reads it)
REDEEMED = "Redeemed "


@dataclass(frozen=True)
class VoucherTerms:
    """What a voucher of a reward is worth and how long it is valid (W5), as a page
    showed them to the customer."""

    value: Decimal | None
    valid_days: int

    @classmethod
    def of(cls, reward: Reward) -> "VoucherTerms":
        return cls(reward.voucher_value, reward.voucher_valid_days)

    def __str__(self):
        worth = f"worth {self.value}, " if self.value is not None else ""
        return f"{worth}valid for {self.valid_days:,} day{pluralize(self.valid_days)}"


def redeem(
    *, member, reward, by=None, now=None, external_id=None, cost=None, terms=None
) -> Redemption:
    """Spend a member's available points on a reward.

    Locks the member (so two redemptions of one member run one after the other and
    can never overspend), then takes one unit of stock with a conditional update (so
    members racing for the last units never take more than there are).

    With an `external_id` (P8) a redemption is made once: the same id again returns it,
    marked skipped; with another member or reward it is refused (a conflict).

    The redemption is a voucher (W5): a new code, valid to the end of the day
    `reward.voucher_valid_days` after today (in TIME_ZONE), worth the reward's value.

    `cost`, `terms`: the points and the voucher (VoucherTerms) the agent confirmed;
    refused if the reward costs or gives otherwise now (a marketer changed it
    meanwhile)."""
    external_id = canonical_id(external_id) if external_id else external_id  # core.ids
    if external_id:
        readable_id(external_id, field="external_id")
    fields = dict(member=member, reward=reward, by=by, now=now, external_id=external_id)
    fields |= dict(cost=cost, terms=terms)
    try:
        return _redeem(**fields)
    except IntegrityError:  # the same id for another member, at the same moment
        # (only then: without an id, `external_id=None` would match every redemption
        # made without one, and retry any other integrity error)
        if not external_id or not Redemption.objects.filter(external_id=external_id).exists():
            raise
        return _redeem(**fields)


def check_redeems(member) -> None:
    """An account whose customer was erased at their request redeems nothing (found by
    a review: the desk turned its points into vouchers)."""
    check_spends(member, refused="nothing was redeemed")


def _redeem(*, member, reward, by, now, external_id, cost, terms) -> Redemption:
    with transaction.atomic():
        member, plan = lock_member(member)
        now = now or timezone.now()  # after the lock: see the entries of who held it before
        if external_id and (done := _redeemed_before(external_id, member, reward, by)):
            return done
        check_redeems(member)
        # T3 before the reward's tier is checked: thresholds changed that the
        # recalculation has not brought to this member yet move it first, as they do
        # before a purchase earns (found by a review: a Gold reward went to a member the
        # new rules make Silver)
        log = TierLog()
        follow_new_rules(member, plan.ranking, plan.degradation, log=log)
        reward = Reward.objects.select_related("min_tier").get(pk=reward.pk)
        if cost is not None and reward.points_cost != cost:
            raise ValidationError(
                f"{reward.name} now costs {reward.points_cost:,} points, not {cost:,}: "
                "nothing was redeemed. Confirm the new cost with the customer first."
            )
        if terms is not None and VoucherTerms.of(reward) != terms:
            raise ValidationError(
                f"{reward.name} now gives a voucher {VoucherTerms.of(reward)}, not {terms}: "
                "nothing was redeemed. Confirm the new voucher with the customer first."
            )
        available, pending = balances(member, now=now)
        reason = locked_because(
            reward,
            effective_tier_id=member.effective_tier_id,
            available=available,
            pending=pending,
            ranking=plan.ranking,
            now=now,
        )
        if reason:
            raise ValidationError(f"{reward.name}: {reason}.")
        took_unit = reward.stock is not None
        if took_unit:
            taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:
                raise ValidationError(f"{reward.name}: Out of stock.")
        entry = post_redemption(
            member,
            plan,
            points=reward.points_cost,
            reason=REDEEMED + reward.name,
            by=by,
            at=now,
            log=log,
        )
        redemption = Redemption.objects.create(
            member=member,
            reward=reward,
            reward_name=reward.name,
            took_unit=took_unit,
            points=reward.points_cost,
            redeemed_at=now,
            redeemed_by=by,
            entry=entry,
            external_id=external_id or None,
            valid_until=timezone.localdate(now) + timedelta(days=reward.voucher_valid_days),
            value=reward.voucher_value,
        )
        events.record(
            events.EventType.REDEMPTION_CREATED, member_id=member.pk, subject_id=redemption.pk
        )
        return redemption


def _redeemed_before(external_id, member, reward, by) -> Redemption | None:
    """P8: the redemption made under this id, marked skipped, when this is its exact
    repeat: the same member (or the account it was merged into), reward and sender
    (the same API key or staff user); with other content, a conflict."""
    existing = (
        Redemption.objects.annotate(owner_id=owner("member")).filter(external_id=external_id)
    ).first()
    if existing is None:
        return None
    if member.pk not in (existing.member_id, existing.owner_id) or existing.reward_id != reward.pk:
        message = f"Redemption {external_id} was already made for another member or reward."
        raise ValidationError({"external_id": ValidationError(message, code=CONFLICT)})
    if existing.redeemed_by_id != (by.pk if by else None):
        message = f"Redemption {external_id} was already made by another key or user."
        raise ValidationError({"external_id": ValidationError(message, code=CONFLICT)})
    existing.skipped = True
    return existing
