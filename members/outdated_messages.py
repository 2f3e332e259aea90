"""Tier messages that no longer say where the member is when they would go (D4, for
every tier message): a later change moved the member on, in the same write (an import
crossing two tiers, a return in the file that takes back the tier-up of its purchase, a
restoration that is also a tier-up) or before the outbox ran (the mail server down, a
status match ended minutes after it was granted). Such a message is dropped unsent; the
later change's own message, if it has one, tells the member.

A status match that ends as the member drops for inactivity (the same action or nightly
run) is told in one message, the drop's: "Your Gold status match has ended. We have not
seen you for a while..."; the end's own "Your tier is now Silver" would be untrue as it
arrived."""

from members.models import Notification, TierChange

Kind = Notification.Kind


def outdated(notification: Notification) -> bool:
    """Whether the message, read with its member as they are now, tells a tier they no
    longer hold: a tier-up the tier they qualify for, a drop, a restoration or the end of
    a status match the tier they hold, a status match the match that runs (its tier and
    last day)."""
    change, member = notification.tier_change, notification.member
    if notification.kind == Kind.TIER_UP:
        return member.qualified_tier_id != change.qualified_tier_id
    if notification.kind in (Kind.DEGRADATION, Kind.RESTORATION, Kind.STATUS_MATCH_ENDED):
        return member.effective_tier_id != change.to_tier_id
    if notification.kind == Kind.STATUS_MATCH:
        last_day = notification.context.get("last_day_on")
        running = member.granted_until and member.granted_until.isoformat()
        return member.granted_tier_id != change.to_tier_id or running != last_day
    return False


def match_ended_with(drop: TierChange) -> TierChange | None:
    """The end of a status match recorded with this drop, which its message tells too."""
    ended = TierChange.objects.filter(
        member_id=drop.member_id,
        changed_at=drop.changed_at,
        reason=TierChange.Reason.STATUS_MATCH_ENDED,
        to_tier_id=drop.from_tier_id,
    )
    return ended.select_related("from_tier").first()
