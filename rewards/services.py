"""Redemption (W3) and cancellation (W4). Points move through points.services."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import events
from points.models import LedgerEntry
from points.selectors import balances
from points.services import lock_member, post_redemption, post_refund
from rewards.models import Redemption, Reward
from rewards.selectors import locked_because

REASON_LENGTH = LedgerEntry._meta.get_field("reason").max_length


def redeem(*, member, reward, by=None, now=None, external_id=None) -> Redemption:
    """Spend a member's available points on a reward.

    Locks the member (so two redemptions of one member run one after the other and
    can never overspend), then takes one unit of stock with a conditional update (so
    members racing for the last units never take more than there are).

    With an `external_id` (P8) a redemption is made once: the same id again returns it,
    marked skipped; with another member or reward it is refused (a conflict)."""
    try:
        return _redeem(member=member, reward=reward, by=by, now=now, external_id=external_id)
    except IntegrityError:  # the same id for another member, at the same moment
        if not Redemption.objects.filter(external_id=external_id).exists():
            raise
        return _redeem(member=member, reward=reward, by=by, now=now, external_id=external_id)


def _redeem(*, member, reward, by, now, external_id) -> Redemption:
    with transaction.atomic():
        member, plan = lock_member(member)
        now = now or timezone.now()  # after the lock: see the entries of who held it before
        if external_id and (done := _redeemed_before(external_id, member, reward)):
            return done
        reward = Reward.objects.select_related("min_tier").get(pk=reward.pk)
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
        if reward.stock is not None:
            taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:
                raise ValidationError(f"{reward.name}: Out of stock.")
        entry = post_redemption(
            member, plan, points=reward.points_cost, reason=f"Redeemed {reward.name}", by=by, at=now
        )
        redemption = Redemption.objects.create(
            member=member,
            reward=reward,
            points=reward.points_cost,
            redeemed_at=now,
            redeemed_by=by,
            entry=entry,
            external_id=external_id or None,
        )
        events.record(
            events.EventType.REDEMPTION_CREATED, member_id=member.pk, subject_id=redemption.pk
        )
        return redemption


def _redeemed_before(external_id, member, reward) -> Redemption | None:
    existing = Redemption.objects.filter(external_id=external_id).first()
    if existing is None:
        return None
    if (existing.member_id, existing.reward_id) != (member.pk, reward.pk):
        message = f"Redemption {external_id} was already made for another member or reward."
        raise ValidationError({"external_id": ValidationError(message, code="conflict")})
    existing.skipped = True
    return existing


def refund_reason(reward_name: str, why: str) -> str:
    """The refund entry's reason, within what the ledger keeps."""
    reason = f"Cancelled redemption of {reward_name}"
    why = " ".join((why or "").split())
    return f"{reason}: {why}"[:REASON_LENGTH] if why else reason


def cancel_redemption(*, redemption, by=None, reason="", now=None) -> Redemption:
    """Refund a redemption's points (available at once) and put its unit back in stock.
    `reason`: why, in the staff user's words, kept on the refund's ledger entry."""
    with transaction.atomic():
        # A redemption of an account merged since refunds the member it was merged into.
        member, plan = lock_member(redemption.member, follow_merge=True)
        now = now or timezone.now()
        redemption = (
            Redemption.objects.select_for_update().select_related("reward").get(pk=redemption.pk)
        )
        if redemption.status == Redemption.Status.CANCELLED:
            raise ValidationError(
                f"This redemption of {redemption.reward.name} was already cancelled."
            )
        redemption.refund = post_refund(
            member,
            plan,
            points=redemption.points,
            reason=refund_reason(redemption.reward.name, reason),
            by=by,
            at=now,
        )
        Reward.objects.filter(Q(pk=redemption.reward_id), ~Q(stock=None)).update(
            stock=F("stock") + 1
        )
        redemption.status = Redemption.Status.CANCELLED
        redemption.cancelled_at, redemption.cancelled_by = now, by
        redemption.save(update_fields=["status", "cancelled_at", "cancelled_by", "refund"])
        events.record(
            events.EventType.REDEMPTION_CANCELLED, member_id=member.pk, subject_id=redemption.pk
        )
        return redemption
