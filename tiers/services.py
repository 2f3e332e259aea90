"""Tier status: qualification (T2), recalculation (T3), history (T4), degradation and
restoration (D1-D4)."""

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from members.models import Member, Notification, TierChange
from members.services import notify
from tiers.models import DegradationPolicy, Tier
from tiers.selectors import Ranking, degradation_steps

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
    change = record_tier_change(member, reason=reason, from_tier_id=from_tier_id, at=at, by=by)
    if not ranking.higher(new.pk, member.best_tier_id):
        return None
    member.best_tier = new
    notify(member, Notification.Kind.TIER_UP, tier_change=change, bonus=new.upgrade_bonus_points)
    return new


def restore(member: Member, ranking: Ranking, *, at) -> None:
    """D3: a purchase gives a degraded member their qualified tier back at once, before
    the purchase's points are computed. Changes the locked member in memory."""
    if not member.is_degraded:
        return
    from_tier_id = member.effective_tier_id
    member.effective_tier = ranking.by_pk[member.qualified_tier_id]
    change = record_tier_change(member, reason=Reason.RESTORATION, from_tier_id=from_tier_id, at=at)
    notify(member, Notification.Kind.RESTORATION, tier_change=change)


def recalculate_all_tiers() -> int:
    """Requalify every member after thresholds changed (T3), set-based.

    A few statements per tier whatever the number of members: for each tier's band
    of lifetime points, lock, record, then move the members whose qualified tier is
    another. Moves caused by a rules change pay no bonus: T2 bonuses reward earning.
    """
    ranking = Ranking()
    now = timezone.now()
    changed = 0
    with transaction.atomic():
        for tier, band in misqualified_by_tier(ranking):
            _lock_rows(band)
            # Effective follows qualified, except that a degraded member stays degraded
            # (capped at the new tier) until a purchase restores them (D3).
            changed += _record_changes(
                band,
                reason=Reason.RULES_CHANGED,
                at=now,
                to_tier_sql="CASE WHEN m.effective_tier_id = m.qualified_tier_id"
                " OR e.threshold > %s THEN %s ELSE m.effective_tier_id END",
                to_tier_params=[tier.threshold, tier.pk],
                qualified_tier_id=tier.pk,
            )
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


def degrade_inactive_members(*, now=None) -> int:
    """D2: lower the effective tier of inactive members, set-based and idempotent.

    Three statements per (qualified tier, target tier) pair whatever the number of
    members; the result depends only on `now` and each member's last purchase, so a
    second run, or a late one, gives the same tiers as one run on time.
    Returns the number of members moved.
    """
    now = now or timezone.now()
    policy = DegradationPolicy.current()
    changed = 0
    with transaction.atomic():
        for target, members in degradation_steps(policy, Ranking(), now):
            _lock_rows(members)
            changed += _record_changes(
                members,
                reason=Reason.DEGRADATION,
                at=now,
                to_tier_sql="%s",
                to_tier_params=[target.pk],
            )
            members.update(effective_tier=target)
        if changed:
            _queue_notifications(Reason.DEGRADATION, Notification.Kind.DEGRADATION, at=now)
    return changed


def _lock_rows(members) -> None:
    """Lock the members a set-based change is about to touch, so that a purchase
    running at the same time waits, and the history and the update see the same rows.
    (SQLite has no row locks: its write transaction already excludes other writers.)"""
    if not connection.features.has_select_for_update_of:
        return
    sql, params = members.select_for_update(of=("self",)).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS locked", params)


def _record_changes(
    members, *, reason, at, to_tier_sql, to_tier_params, qualified_tier_id=None
) -> int:
    """INSERT ... SELECT one history row per member of the queryset (T4).

    `to_tier_sql` computes the new effective tier from the member row `m` and its
    current effective tier `e`; the qualified tier is the given one, or unchanged."""
    member_sql, params = members.values("pk").query.sql_with_params()
    history, member_table, tier_table = (
        TierChange._meta.db_table,
        Member._meta.db_table,
        Tier._meta.db_table,
    )
    qualified_sql = "%s" if qualified_tier_id else "m.qualified_tier_id"
    qualified_params = [qualified_tier_id] if qualified_tier_id else []
    sql = f"""
        INSERT INTO {history}
            (member_id, reason, from_tier_id, to_tier_id, qualified_tier_id, changed_at)
        SELECT m.id, %s, m.effective_tier_id, {to_tier_sql}, {qualified_sql}, %s
        FROM {member_table} m JOIN {tier_table} e ON e.id = m.effective_tier_id
        WHERE m.id IN ({member_sql})
    """
    at_db = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(sql, [reason, *to_tier_params, *qualified_params, at_db, *params])
        return cursor.rowcount


def _queue_notifications(reason, kind, *, at) -> None:
    """One outbox message per tier change of this run not yet announced (D4)."""
    outbox, history = Notification._meta.db_table, TierChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {outbox} (member_id, kind, context, tier_change_id, created_at)
            SELECT h.member_id, %s, '{{}}', h.id, %s FROM {history} h
            WHERE h.reason = %s AND h.changed_at = %s
              AND NOT EXISTS (SELECT 1 FROM {outbox} n WHERE n.tier_change_id = h.id)
            """,
            [
                kind,
                connection.ops.adapt_datetimefield_value(at),
                reason,
                connection.ops.adapt_datetimefield_value(at),
            ],
        )
