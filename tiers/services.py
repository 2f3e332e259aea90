"""Tier status: qualification (T2), recalculation (T3), history (T4)."""

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from members.models import Member, Notification, TierChange
from members.services import notify
from tiers.models import Tier
from tiers.selectors import Ranking

Reason = TierChange.Reason


def record_tier_change(member, *, reason, from_tier_id, at, by=None) -> TierChange:
    return TierChange.objects.create(
        member=member,
        reason=reason,
        from_tier_id=from_tier_id,
        to_tier_id=member.effective_tier_id,
        qualified_tier_id=member.qualified_tier_id,
        changed_at=at,
        created_by=by,
    )


def requalify(member: Member, ranking: Ranking, *, at, reason=None, by=None) -> Tier | None:
    """Recompute the qualified tier after a ledger write (T2), on the locked member.

    Changes the member in memory (the caller saves it), records the change (T4) and
    notifies a tier-up. Returns the tier reached for the first time, if any: the
    caller pays its bonus.
    """
    new = ranking.qualified_for(member.lifetime_points)
    if new.pk == member.qualified_tier_id:
        return None
    went_up = ranking.higher(new.pk, member.qualified_tier_id)
    from_tier_id = member.effective_tier_id
    # A degraded member stays degraded until a purchase (D3), but never above the new tier.
    if not member.is_degraded or ranking.higher(member.effective_tier_id, new.pk):
        member.effective_tier = new
    member.qualified_tier = new
    reason = reason or (Reason.UPGRADE if went_up else Reason.DOWNGRADE)
    record_tier_change(member, reason=reason, from_tier_id=from_tier_id, at=at, by=by)
    if not ranking.higher(new.pk, member.best_tier_id):
        return None
    member.best_tier = new
    notify(member, Notification.Kind.TIER_UP, tier=new.name, bonus=new.upgrade_bonus_points)
    return new


def recalculate_all_tiers() -> int:
    """Requalify every member after thresholds changed (T3), set-based.

    A few statements per tier whatever the number of members: for each tier's band
    of lifetime points, record then move the members whose qualified tier is another.
    Moves caused by a rules change pay no bonus: T2 bonuses reward earning.
    """
    ranking = Ranking()
    now = timezone.now()
    changed = 0
    with transaction.atomic():
        for tier, band in misqualified_by_tier(ranking):
            changed += _record_rules_changed(band, tier, now)
            # Effective follows qualified, except that a degraded member stays degraded
            # (capped at the new tier) until a purchase restores them (D3).
            band.filter(effective_tier=F("qualified_tier")).update(effective_tier=tier)
            band.filter(effective_tier__threshold__gt=tier.threshold).update(effective_tier=tier)
            band.filter(best_tier__threshold__lt=tier.threshold).update(best_tier=tier)
            band.update(qualified_tier=tier)
    return changed


def misqualified_by_tier(ranking: Ranking):
    """Each tier with the members whose lifetime points qualify for it but who hold
    another qualified tier."""
    for tier, low, high in ranking.bands():
        band = Member.objects.exclude(qualified_tier=tier)
        if low is not None:
            band = band.filter(lifetime_points__gte=low)
        if high is not None:
            band = band.filter(lifetime_points__lt=high)
        yield tier, band


def _record_rules_changed(band, tier: Tier, at) -> int:
    """INSERT ... SELECT one history row per member of the band (T4)."""
    member_sql, params = band.values("pk").query.sql_with_params()
    history, members, tiers = (
        TierChange._meta.db_table,
        Member._meta.db_table,
        Tier._meta.db_table,
    )
    sql = f"""
        INSERT INTO {history}
            (member_id, reason, from_tier_id, to_tier_id, qualified_tier_id, changed_at)
        SELECT m.id, %s, m.effective_tier_id,
               CASE WHEN m.effective_tier_id = m.qualified_tier_id OR e.threshold > %s
                    THEN %s ELSE m.effective_tier_id END,
               %s, %s
        FROM {members} m JOIN {tiers} e ON e.id = m.effective_tier_id
        WHERE m.id IN ({member_sql})
    """
    at_db = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [Reason.RULES_CHANGED, tier.threshold, tier.pk, tier.pk, at_db, *params]
        )
        return cursor.rowcount
