"""Degradation of inactive members (D1, D2, D4) and restoration by a purchase (D3)."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.jobs import id_chunks, lock_in_id_order
from members.models import Member, Notification, TierChange
from tiers.models import DegradationPolicy
from tiers.selectors import (
    Ranking,
    inactive_since_of,
    inactivity_leaves,
    lowest,
    members_to_degrade,
    nights_not_run_for,
    period_end,
    steps_ahead,
    steps_due_tonight,
)
from tiers.services.history import (
    Reason,
    TierLog,
    announce_changes,
    apply_changes,
    notify,
    record_change,
)
from tiers.services.qualification import degraded
from tiers.services.status_match import end_status_grants, ending_status_grants


def restore(
    member: Member, ranking: Ranking, policy, *, at, now, log: TierLog, by=None, heard=None
) -> None:
    """D3: a purchase at `at`, recorded at `now`, gives a degraded member back the tier
    their inactivity leaves them at once it counts from this purchase (D2, under the
    degradation `policy`): the qualified tier, unless the purchase itself is a full
    period old or more (a till that was offline, a late file). Then the member gets the
    tier tonight's degradation run would give them (steps_due_tonight), so that the run
    has nothing to undo: a partial restoration, or none when that is the tier they
    hold. Changes the locked member in memory, whose last purchase is already this one
    if it is the latest; `by`, the account that recorded the purchase, is on the
    history row. A purchase dated before the member's last purchase restores nothing:
    inactivity counts from the last purchase, which it does not move. `heard`: the tier
    the member last heard of, when drops_missed moved them since (by default, the tier
    they hold)."""
    if not degraded(member, ranking):
        return
    if member.last_purchase_at is not None and at < member.last_purchase_at:
        return
    from_tier_id = member.effective_tier_id
    member.effective_tier_id = member.qualified_tier_id  # counted from there
    target = inactivity_leaves(member, policy, ranking, steps_due_tonight(now))
    if not ranking.higher(target, from_tier_id):  # a purchase never lowers the tier
        member.effective_tier_id = from_tier_id
        return
    member.effective_tier_id = target
    change = record_change(
        member, log, reason=Reason.RESTORATION, from_tier_id=from_tier_id, at=at, by=by
    )
    # "Welcome back" only to a member who last heard of a tier below this one (D4), and
    # "again" only to one who held it or a higher one (T2): thresholds lowered while they
    # were away may have qualified them for a tier they never had (T3).
    if _last_told(member, ranking, heard or from_tier_id, target) != target:
        at_least = ranking.tiers[ranking.rank[target] :]
        held = TierChange.objects.filter(member=member, to_tier__in=at_least).exists()
        more = {} if held else {"first_time": True}
        notify(member, log, Notification.Kind.RESTORATION, change, **more)


def drops_missed(
    member: Member, ranking: Ranking, policy, *, at, now, log: TierLog, undone: bool = True
) -> int:
    """D2 for a purchase at `at`, recorded at `now`, after nights whose run did not
    reach the member (the workers or beat down, the web up): the drops those runs would
    have made before it, each on its night, as the catch-up runs them; the purchase then
    restores (D3). Without them the catch-up, finding the purchase, would drop no one,
    and an expiry at a cutoff between would read the tier held before (a Gold member's
    points kept though she was Silver from 31 December). Only drops the purchase undoes
    whole, never heard of (no message): not when the purchase is a full period old
    (its restoration leaves some of the drop, which the catch-up records and tells), nor
    for a member whose status match is running (its end is the catch-up's to record,
    G5). Call it on the locked member before the purchase becomes their last. Returns
    the tier they held before, the one they last heard of (restore's `heard`).
    `undone=False`: a merge at `at` (no purchase: it restores nothing, M3), whose
    drops stay and are told as a run tells them."""
    heard = member.effective_tier_id
    period = timedelta(days=policy.inactivity_days)
    # Most purchases come within a period of the last: no step can be due (a day spare
    # for a clock change), and the steps are not worked out.
    if not policy.enabled or at - inactive_since_of(member) < period - timedelta(days=1):
        return heard
    if member.granted_tier_id or period_end(at, period) <= steps_due_tonight(now):
        return heard
    ahead = steps_ahead(member, policy, ranking)
    if not ahead or ahead[0][0] >= at:  # nothing fell due before: no run was missed
        return heard
    for night in nights_not_run_for(member.pk, now):
        due = [step for step in ahead if step[0] <= night < at]
        if not due:
            continue
        target = lowest(due).pk
        if ranking.higher(member.effective_tier_id, target):
            from_tier_id, member.effective_tier_id = member.effective_tier_id, target
            change = record_change(
                member, log, reason=Reason.DEGRADATION, from_tier_id=from_tier_id, at=night
            )
            if not undone:
                notify(member, log, Notification.Kind.DEGRADATION, change)
    return heard


def _last_told(member: Member, ranking: Ranking, from_tier_id: int, target: int) -> int:
    """The effective tier a degraded member last hears of once a purchase restores them
    from `from_tier_id` to `target` (D4). The "We miss you" of a drop that has not gone
    yet (the mail server down) is withdrawn when the restoration undoes it: the drop
    left a tier no higher than `target`, so the member never hears they left it. A drop
    from a tier above `target` still goes: the member did leave that tier. A message
    being sent now is locked: the withdrawal waits for it and, sent, it stays. In the
    purchase's transaction, under the member lock."""
    untold = list(
        Notification.objects.filter(member=member, kind=Notification.Kind.DEGRADATION, sent_at=None)
        .select_for_update(of=("self",))
        .select_related("tier_change")
        .order_by("pk")
    )
    undone = [n for n in untold if not ranking.higher(n.tier_change.from_tier_id, target)]
    Notification.objects.filter(pk__in=[n.pk for n in undone]).delete()
    kept = [n for n in untold if n not in undone]
    if kept:
        return kept[-1].tier_change.to_tier_id
    return untold[0].tier_change.from_tier_id if untold else from_tier_id


def degrade_inactive_members(*, now=None) -> int:
    """D2: lower the effective tier of inactive members, set-based and idempotent, in
    this process and one transaction. Returns the number of members moved. The periodic
    task shares the same chunks out to the workers instead, passing them one `now`."""
    now = now or timezone.now()
    with transaction.atomic():
        return sum(
            degrade_chunk(now=now, first_id=first_id, last_id=last_id)
            for first_id, last_id in id_chunks(Member)
        )


@transaction.atomic
def degrade_chunk(*, now, first_id: int, last_id: int, policy=None) -> int:
    """D2 for the members with ids in [first_id, last_id]: a fixed handful of statements
    whatever their number. The result depends only on `now` and each member's last
    purchase, so a second run, or a late one, gives the same tiers as one run on time.
    Returns the number of members moved. `policy`: the run's, read when it started, so
    that a policy saved while its chunks run (switched off, say) is not half applied;
    by default the policy as it is now.

    Status matches whose last day has passed end first (end_status_grants), so that
    the members they held degrade in the same run as their inactivity says; a member
    whose match ends and who then degrades counts once."""
    ranking = Ranking()
    changes = members_to_degrade(policy or DegradationPolicy.current(), ranking, now).filter(
        pk__gte=first_id, pk__lte=last_id
    )
    ending, ended = ending_status_grants(now=now, first_id=first_id, last_id=last_id), 0
    # Most nights none ends: one look at the running grants' index instead of the members.
    if ending.exists():
        # The matches' end and the inactivity each lock their members, in id order; in
        # two passes, an inactive member below one whose match ends would be taken after
        # it and deadlock with an import or a merge. Both sets are locked first, as one.
        lock_in_id_order(
            Member.objects.filter(
                Q(pk__in=ending.values("member")) | Q(pk__in=changes.values("pk"))
            )
        )
        ended = end_status_grants(ranking, now=now, first_id=first_id, last_id=last_id)
    changed = apply_changes(
        changes.annotate(new_qualified=F("qualified_tier")), reason=Reason.DEGRADATION, at=now
    )
    if changed:
        announce_changes(
            Reason.DEGRADATION,
            Notification.Kind.DEGRADATION,
            at=now,
            first_id=first_id,
            last_id=last_id,
        )
    if not ended:
        return changed
    return (
        TierChange.objects.filter(
            changed_at=now,
            reason__in=(Reason.DEGRADATION, Reason.STATUS_MATCH_ENDED),
            member__gte=first_id,
            member__lte=last_id,
        )
        .values("member")
        .distinct()
        .count()
    )
