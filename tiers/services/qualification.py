"""The qualified tier (T2) after each ledger write, a programme migrating in at its
members' tiers, and every member requalified when thresholds change (T3)."""

import operator
from functools import reduce

from django.db import transaction
from django.db.models import Value
from django.utils import timezone

from core import events, figures
from core.db import keep_statistics
from core.jobs import lock_in_id_order
from members.models import Member, Notification, TierChange
from tiers.models import DegradationPolicy, Tier
from tiers.selectors import (
    Ranking,
    inactivity_leaves,
    lock_tiers,
    misqualified_by_tier,
    steps_due_by,
)
from tiers.services.history import (
    TIER_CHANGED,
    Reason,
    TierLog,
    apply_changes,
    notify,
    record_change,
)
from tiers.threshold_changes import with_rules_changed_tier


def requalify(
    member: Member, ranking: Ranking, policy, *, at, log: TierLog, reason=None, by=None
) -> Tier | None:
    """Recompute the qualified tier after a ledger write (T2), on the locked member.

    Changes the member in memory (the caller saves it), logs the change (T4) and a
    tier-up message. Returns the tier reached for the first time, if any: the caller
    pays its bonus. The effective tier moves with the qualified one (_follow_qualified):
    a degraded Gold member at Silver whom a return qualifies for Silver is at Bronze at
    once, not Silver until tonight's run and then told "We miss you" a second time; one
    whom tier-counting goodwill qualifies for Platinum is at Gold, a level below it until
    a purchase (D2, D3).
    """
    new = ranking.qualified_for(member.lifetime_points)
    if new.id == member.qualified_tier_id:
        return None
    went_up = ranking.higher(new.id, member.qualified_tier_id)
    from_tier_id = member.effective_tier_id
    _follow_qualified(member, ranking, new, lowered_by=policy, at=at)
    reason = reason or (Reason.UPGRADE if went_up else Reason.DOWNGRADE)
    change = record_change(member, log, reason=reason, from_tier_id=from_tier_id, at=at, by=by)
    if not ranking.higher(new.id, member.best_tier_id):
        return None
    member.best_tier_id = new.id
    notify(member, log, Notification.Kind.TIER_UP, change, bonus=new.upgrade_bonus_points)
    return new


def follow_new_rules(member: Member, ranking: Ranking, policy, *, log: TierLog) -> None:
    """T3 for one locked member before a write counts: thresholds changed and the
    recalculation has not reached this member yet, so the member first moves to the
    tier their lifetime points reach now, as recalculate_all_tiers would move them
    (recorded "rules changed", no bonus, no message), lowered by their inactivity
    under the degradation `policy` (D2) as it would be. Then the write counts as ever:
    an upgrade is earned."""
    # Dated when the rules reached the member, not at the write's own date.
    _qualify_without_bonus(
        member, ranking, reason=Reason.RULES_CHANGED, at=timezone.now(), log=log, lowered_by=policy
    )


def open_at_tier(member, ranking: Ranking, *, at, log: TierLog) -> bool:
    """A programme migrating in: after its opening balances, the member holds the tier
    its lifetime points reach, as it did in the programme before. Not a tier-up (T2).
    Recorded (T4) with reason opening_balance.

    `member` is a Member or any record with its pk, tier ids (the granted one too) and
    lifetime_points (the import keeps plain records); changed in memory, the caller
    writes it. Returns whether the tier changed."""
    return _qualify_without_bonus(member, ranking, reason=Reason.OPENING_BALANCE, at=at, log=log)


def _qualify_without_bonus(
    member, ranking: Ranking, *, reason, at, log: TierLog, lowered_by=None
) -> bool:
    """The tier the member's lifetime points reach, not as a tier-up: no bonus and no
    message; the highest tier ever reached rises to it, so that only a tier above it
    pays a bonus later. Recorded (T4) with `reason`. Returns whether the tier changed.
    `lowered_by`: the degradation policy under which a member who follows the new tier
    is lowered by their inactivity at `at` (D2), as recalculate_all_tiers lowers them
    (inactivity_tier): not a day at the new tier, then "We miss you"."""
    new = ranking.qualified_for(member.lifetime_points)
    if new.id == member.qualified_tier_id:
        return False
    from_tier_id = member.effective_tier_id
    _follow_qualified(member, ranking, new, lowered_by=lowered_by, at=at)
    if ranking.higher(new.id, member.best_tier_id):
        member.best_tier_id = new.id
    record_change(member, log, reason=reason, from_tier_id=from_tier_id, at=at)
    return True


def degraded(member, ranking: Ranking) -> bool:
    """Below the qualified tier (D2). A status match can only hold a member above it."""
    return ranking.higher(member.qualified_tier_id, member.effective_tier_id)


def _follow_qualified(member, ranking: Ranking, new: Tier, *, lowered_by, at) -> None:
    """The member now qualifies for `new` (T2) without a purchase: the effective tier
    moves with it, the levels lost to inactivity kept (D2 counts them below the
    qualified tier; only a purchase gives them back, D3), lowered further where the
    member's inactivity under the degradation policy `lowered_by` reaches a step of the
    new tier (as the run would), and held at least at a running status match's tier."""
    lost = ranking.rank[member.qualified_tier_id] - ranking.rank[member.effective_tier_id]
    member.qualified_tier_id = new.id
    member.effective_tier_id = ranking.lower(new.id, max(lost, 0)).pk
    granted = member.granted_tier_id
    if granted and ranking.higher(granted, member.effective_tier_id):
        member.effective_tier_id = granted
    if lowered_by is not None:
        member.effective_tier_id = inactivity_leaves(member, lowered_by, ranking, steps_due_by(at))


def recalculate_all_tiers() -> int:
    """Requalify every member after thresholds changed (T3), set-based.

    A few statements per tier whatever the number of members: for each tier's band
    of lifetime points, lock, record, then move the members whose qualified tier is
    another. Moves caused by a rules change pay no bonus: T2 bonuses reward earning.
    A member who follows the new tier gets it lowered by their inactivity (D2), as the
    next degradation run would: not a day at a tier then a second "We miss you".
    """
    changed = 0
    keep_statistics(Tier)  # the tiers as they are now: nightly, and after each change
    with transaction.atomic():
        # One recalculation at a time, each with the thresholds saved last: a run that
        # read older ones must not finish after a newer run (tiers.selectors).
        ranking = Ranking(lock_tiers())
        policy = DegradationPolicy.current()
        now = timezone.now()
        bands = list(misqualified_by_tier(ranking))
        # Every member it moves, locked at once in id order as every writer locks members:
        # band by band, the locks crossed an import's (a deadlock).
        lock_in_id_order(reduce(operator.or_, (band for _, band in bands)))
        for tier, band in bands:
            below = [t.pk for t in ranking.tiers if t.threshold < tier.threshold]
            changes = with_rules_changed_tier(band, tier, ranking, policy, now).annotate(
                new_qualified=Value(tier.pk)
            )
            changed += apply_changes(changes, reason=Reason.RULES_CHANGED, at=now)
            band.filter(best_tier__in=below).update(best_tier=tier)
            band.update(qualified_tier=tier)
        if changed:
            figures.stale()
            events.record_bulk(
                TIER_CHANGED, TierChange, reason=Reason.RULES_CHANGED, changed_at=now
            )
    return changed
