"""Manual adjustments by staff (P6)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from points.models import MANUAL_ADJUSTMENT, LedgerEntry, PointDefinition
from points.selectors import balances
from points.services.posting import entry_of, lock, movement, post_entries
from tiers.services import Reason as TierReason

Kind = LedgerEntry.Kind
REASON_LENGTH = LedgerEntry._meta.get_field("reason").max_length


def _check_definition(definition, points: int) -> None:
    """P6: an adjustment is a bonus (any number of points) or an action by hand: then
    exactly the action's fixed points, or minus them to take an action back."""
    if definition.kind == PointDefinition.Kind.PURCHASE:
        raise ValidationError(
            {"definition": f"{definition.name} is earned by purchases, not given by hand."}
        )
    if definition.kind == PointDefinition.Kind.ACTION and abs(points) != definition.points:
        raise ValidationError(
            {
                "points": f"{definition.name} is worth {definition.points:,} points: give "
                f"{definition.points:,} (or {-definition.points:,} to take it back), or "
                "choose a bonus definition for another amount."
            }
        )


def adjust_points(*, member, points, reason, by, definition=None, now=None) -> LedgerEntry:
    """A staff user adds or removes points by hand (P6), available at once."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ValidationError({"points": "Give a whole number of points other than zero."})
    if abs(points) > settings.MAX_ADJUSTMENT_POINTS:
        raise ValidationError(
            {
                "points": f"At most {settings.MAX_ADJUSTMENT_POINTS:,} points can be added "
                f"or removed in one adjustment, not {points:,}."
            }
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the points are adjusted."})
    if len(reason) > REASON_LENGTH:
        raise ValidationError(
            {"reason": f"Keep the reason to {REASON_LENGTH} characters (it has {len(reason)})."}
        )
    if by is None:
        raise ValidationError("A manual adjustment must name the staff user who makes it.")
    with transaction.atomic():
        member, plan, _ = lock(member)
        # The clock is read once the lock is held: a writer that waited for the lock
        # must see the entries of the one before it as already issued.
        now = now or timezone.now()
        definition = definition or plan.definition(MANUAL_ADJUSTMENT)
        _check_definition(definition, points)
        if points < 0 and definition.redeemable:
            available = balances(member, now=now).available
            if available + points < 0:
                raise ValidationError(
                    {
                        "points": f"Cannot remove {-points:,} points: "
                        f"{member.external_id} has only {available:,} available."
                    }
                )
        if points < 0 and definition.counts_toward_tier and member.lifetime_points + points < 0:
            raise ValidationError(
                {
                    "points": f"Cannot remove {-points:,} tier points: "
                    f"{member.external_id} has only {member.lifetime_points:,}."
                }
            )
        adjustment = movement(definition, Kind.ADJUSTMENT, points, at=now, reason=reason)
        entry = entry_of(member, adjustment, created_by=by)
        post_entries(member, plan, [entry], at=now, reason=TierReason.MANUAL, by=by)
    return entry
