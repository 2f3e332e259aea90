"""Cancellation (W4 as W5 changes it): an unused voucher gives its points back and its
unit back to stock (unless its expiry gave the unit back already, W6); a used one cannot
be cancelled."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import events
from points.expiry_selectors import cutoff_instant
from points.models import LedgerEntry
from points.services import lock_member, pending_cutoffs, post_refund
from rewards.models import Redemption
from rewards.services.stock import return_units

CANCEL_REASON_LENGTH = 200  # the staff user's words, kept whole beside the reward's name


def refund_reason(reward_name: str, why: str) -> str:
    """The refund entry's reason: the staff user's words (up to CANCEL_REASON_LENGTH)
    kept whole, the reward's name shortened when both do not fit the ledger's column."""
    why = " ".join((why or "").split())
    if not why:
        return f"Cancelled redemption of {reward_name}"[: LedgerEntry.REASON_LENGTH]
    room = LedgerEntry.REASON_LENGTH - len(f"Cancelled redemption of : {why}")  # for the name
    name = reward_name if len(reward_name) <= room else f"{reward_name[: max(room - 1, 0)]}…"
    return f"Cancelled redemption of {name}: {why}"[: LedgerEntry.REASON_LENGTH]


def why_not_cancellable(redemption: Redemption) -> str | None:
    """Why a redemption cannot be cancelled (W4, W5), in words; None when it can."""
    if redemption.status == Redemption.Status.CANCELLED:
        return f"This redemption of {redemption.reward_name} was already cancelled."
    if redemption.used_at is not None:
        return (
            f"The {redemption.voucher_name} {redemption.shown_code} was used on "
            f"{timezone.localtime(redemption.used_at):%-d %b %Y at %H:%M}: a used voucher "
            "cannot be cancelled."
        )
    return None


def cancel_redemption(*, redemption, by=None, reason="", now=None) -> Redemption:
    """Refund a redemption's points (available at once) and put the unit it took back in
    stock, unless its voucher was used. `reason`: why, in the staff user's words, kept on the
    refund's ledger entry.

    The redemption's row is locked before it is read, as `use_voucher`'s conditional
    update locks it: a cancellation and a use racing never both succeed."""
    with transaction.atomic():
        # A redemption of an account merged since refunds the member it was merged into.
        member, plan = lock_member(redemption.member, follow_merge=True)
        now = now or timezone.now()
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        # Locked: a use waits for us, or came first.
        if refused := why_not_cancellable(redemption):
            raise ValidationError(refused)
        check_no_expiry_due(redemption, now)
        redemption.refund = post_refund(
            member,
            plan,
            points=redemption.points,
            reason=refund_reason(redemption.reward_name, reason),
            by=by,
            at=now,
        )
        # The unit it took, unless it went back already when the voucher expired (W6).
        if redemption.holds_unit:
            return_units(redemption.reward_id, 1)
            redemption.unit_returned_at = now
        redemption.status = Redemption.Status.CANCELLED
        redemption.cancelled_at, redemption.cancelled_by = now, by
        redemption.save(
            update_fields=["status", "cancelled_at", "cancelled_by", "refund", "unit_returned_at"]
        )
        # Under the redemption's member, as redemption.created was (the member it names,
        # a merged account's too): in order after it.
        events.record(
            events.EventType.REDEMPTION_CANCELLED,
            member_id=redemption.member_id,
            subject_id=redemption.pk,
        )
        return redemption


def check_no_expiry_due(redemption: Redemption, now) -> None:
    """A redemption made after a cutoff whose expiry has not run yet is cancelled once it
    has: that run counts the redemption as spending after the cutoff (E2), and would let
    the points it gives back escape it."""
    cutoffs = pending_cutoffs(now)
    if cutoffs and redemption.redeemed_at > cutoff_instant(cutoffs[0]):
        raise ValidationError(
            f"The points expiry of {cutoffs[0]:%-d %b %Y} has not finished: cancel this "
            "redemption, made after it, once it has (the nightly job runs at 00:05)."
        )
