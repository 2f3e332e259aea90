"""Tier messages that no longer say where the member is when they would go (D4, for
every tier message): a later change moved the member on, in the same write (an import
crossing two tiers, a return in the file that takes back the tier-up of its purchase, a
restoration that is also a tier-up) or before the outbox ran (the mail server down, a
status match ended minutes after it was granted). Such a message is dropped unsent; the
later change's own message, if it has one, tells the member."""

from members.models import Notification

Kind = Notification.Kind


def outdated(notification: Notification) -> bool:
    """Whether the message, read with its member as they are now, tells a tier they no
    longer hold: a tier-up the tier they qualify for, a drop or a restoration the tier
    they hold, a status match the match that runs (its tier and last day)."""
    change, member = notification.tier_change, notification.member
    if notification.kind == Kind.TIER_UP:
        return member.qualified_tier_id != change.qualified_tier_id
    if notification.kind in (Kind.DEGRADATION, Kind.RESTORATION):
        return member.effective_tier_id != change.to_tier_id
    if notification.kind == Kind.STATUS_MATCH:
        last_day = notification.context.get("last_day_on")
        running = member.granted_until and member.granted_until.isoformat()
        return member.granted_tier_id != change.to_tier_id or running != last_day
    return False
