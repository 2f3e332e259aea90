"""Manual adjustments by staff (P6): one by hand (adjust_points) and, through the same
checks, each row of a file of point grants (points.services.grants)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.staff_input import is_blank
from points.models import MANUAL_ADJUSTMENT, TIER_UP_BONUS, LedgerEntry, PointDefinition
from points.selectors import balances
from points.services.posting import entry_of, lock, movement, post_entries
from points.services.rules import check_receives
from tiers.services import Reason as TierReason

Kind = LedgerEntry.Kind
OPENING_BALANCE = "opening-balance"
# Bonus definitions the programme writes itself (a tier-up's bonus, once per tier; a
# migrating member's opening balance, once per member): never given by hand.
NOT_GIVEN_BY_HAND = (TIER_UP_BONUS, OPENING_BALANCE)


def check_adjuster(by) -> None:
    """P6: an adjustment names the staff user who makes it."""
    if by is None:
        raise ValidationError("A manual adjustment must name the staff user who makes it.")
    if not by.is_staff:
        raise ValidationError(f"{by} is not a staff user: only staff adjust points.")


def check_adjustment(points, reason) -> str:
    """P6 for an adjustment on its own: signed whole points other than zero, at most
    MAX_ADJUSTMENT_POINTS in size, and a reason. One ValidationError names every field
    that is wrong. Returns the reason as it is recorded (stripped)."""
    errors = {}
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        errors["points"] = "Give a whole number of points other than zero."
    elif abs(points) > settings.MAX_ADJUSTMENT_POINTS:
        errors["points"] = (
            f"At most {settings.MAX_ADJUSTMENT_POINTS:,} points can be added "
            f"or removed in one adjustment, not {points:,}."
        )
    reason = (reason or "").strip()
    if is_blank(reason):
        errors["reason"] = "Say why the points are adjusted."
    elif len(reason) > LedgerEntry.REASON_LENGTH:
        errors["reason"] = (
            f"Keep the reason to {LedgerEntry.REASON_LENGTH} characters (it has {len(reason)})."
        )
    if errors:
        raise ValidationError(errors)
    return reason


def check_definition(definition: PointDefinition, points: int) -> None:
    """P6: an adjustment is an active bonus definition (any number of points) or an
    action by hand: then exactly the action's fixed points, or minus them to take an
    action back. Never purchase points, nor what the programme writes itself."""
    if definition.kind == PointDefinition.Kind.PURCHASE:
        raise ValidationError(
            {"definition": f"{definition.name} is earned by purchases, not given by hand."}
        )
    if definition.handle in NOT_GIVEN_BY_HAND:
        raise ValidationError(
            {
                "definition": f"{definition.name} is written by the programme itself, not "
                "given by hand: choose a bonus or action definition."
            }
        )
    if not definition.is_active:
        raise ValidationError(
            {
                "definition": f"{definition.name} is switched off: a marketer can activate "
                "it under Point definitions."
            }
        )
    if definition.kind == PointDefinition.Kind.ACTION and abs(points) != definition.points:
        raise ValidationError(
            {
                "points": f"{definition.name} is worth {definition.points:,} points: give "
                f"{definition.points:,} (or {-definition.points:,} to take it back), or "
                "choose a bonus definition for another amount."
            }
        )


def check_removal(member, definition: PointDefinition, points: int, *, available) -> None:
    """P6: a negative adjustment may not take the available balance below zero (a
    redeemable definition) nor the lifetime points (a tier-counting one). `available`
    is the member's available balance before it (unused for a positive one)."""
    if points >= 0:
        return
    if definition.redeemable and available + points < 0:
        raise ValidationError(
            {
                "points": f"Cannot remove {-points:,} points: "
                f"{member.external_id} has only {available:,} available."
            }
        )
    if definition.counts_toward_tier and member.lifetime_points + points < 0:
        raise ValidationError(
            {
                "points": f"Cannot remove {-points:,} tier points: "
                f"{member.external_id} has only {member.lifetime_points:,}."
            }
        )


def adjust_points(
    *, member, points, reason, by, definition=None, now=None, approved=False
) -> LedgerEntry:
    """A staff user adds or removes points by hand (P6), available at once. `approved`:
    a request above `by`'s goodwill limit that a CX supervisor approved (G3): `by` was
    staff when asking, and may have left since."""
    reason = check_adjustment(points, reason)
    if not approved:
        check_adjuster(by)
    with transaction.atomic():
        member, plan, _ = lock(member)
        # The clock is read once the lock is held: a writer that waited for the lock
        # must see the entries of the one before it as already issued.
        now = now or timezone.now()
        definition = definition or plan.definition(MANUAL_ADJUSTMENT)
        check_definition(definition, points)
        check_receives(member, points=points, field="points")
        removes = points < 0 and definition.redeemable
        available = balances(member, now=now).available if removes else None
        check_removal(member, definition, points, available=available)
        adjustment = movement(definition, Kind.ADJUSTMENT, points, at=now, reason=reason)
        entry = entry_of(member, adjustment, created_by=by)
        post_entries(member, plan, [entry], at=now, reason=TierReason.MANUAL, by=by)
    return entry
