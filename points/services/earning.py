"""Purchases and actions: what they earn (P2, P3, P5) and the restoration a purchase
brings first (D3). `purchase_earning` is the rule of a purchase on a locked member,
shared with the import."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import events
from points.models import Channel, LedgerEntry, PointDefinition, Transaction
from points.selectors import Programme
from points.services import sql
from points.services.posting import (
    Movement,
    apply_entries,
    earning,
    entry_of,
    idempotent,
    lock,
    post_transaction,
    recorded_before,
    written,
)
from points.services.referrals import lock_referrer_first, pay_referral, referral_due
from points.services.rules import (
    check_purchase_points,
    check_receives,
    check_transaction,
    multiplier_label,
    points_per_unit,
    purchase_points,
    rates_reason,
    transaction_fields,
)
from tiers.models import Tier
from tiers.services import TierLog, degraded, drops_missed, follow_new_rules, restore


def purchase_earning(
    member, plan: Programme, log: TierLog, *, amount, at, channel, store, now, by=None
) -> Movement | None:
    """The rules of a purchase at `at`, recorded at `now`, on a locked member, in
    memory: the drops of nights whose run did not happen come first (drops_missed),
    then it becomes the member's last purchase if it is the latest (D2) and restores
    the tier its date leaves (D3); then floor(amount x earn rate x effective
    tier multiplier x campaigns) (P2, P3), under the campaigns whose audience the
    purchase is in (its tier, channel, store, amount and the member's birthday
    month). Returns its earning, if it earns any points; record_purchase and the
    import both use it. `by`: the account that recorded it, on the restoration it
    records. Thresholds changed since the member was last qualified move it first
    (T3), so the purchase earns at the tier the rules give."""
    check_receives(member)
    # The nights missed first, as their runs would have found the member (the catch-up
    # too reads the tiers stored), then thresholds changed since (T3).
    heard = drops_missed(member, plan.ranking, plan.degradation, at=at, now=now, log=log)
    follow_new_rules(member, plan.ranking, plan.degradation, log=log)
    if member.last_purchase_at is None or at > member.last_purchase_at:
        member.last_purchase_at = at
    restore(member, plan.ranking, plan.degradation, at=at, now=now, log=log, by=by, heard=heard)
    tier = plan.ranking.by_pk[member.effective_tier_id]
    campaigns = plan.campaigns_for(
        at=at,
        tier_id=tier.id,
        channel=channel,
        store=store,
        amount=amount,
        birth_date=member.birth_date,
    )
    rate, multiplied_by, reason, rates_without = _rates(plan, tier, campaigns)
    points = purchase_points(amount, rate)
    earn_rate = plan.purchase_definition.earn_rate
    check_purchase_points(points, amount=amount, earn_rate=earn_rate, reason=multiplied_by)
    if not points:
        return None
    earned = earning(plan.purchase_definition, points, at=at, reason=reason)
    if campaigns:
        # What each campaign added: the points less those earned without it.
        earned.campaign_points = {
            str(campaign.id): points - purchase_points(amount, without)
            for campaign, without in zip(campaigns, rates_without, strict=True)
        }
    return earned


def _rates(plan: Programme, tier: Tier, campaigns) -> tuple[Decimal, str, str, list[Decimal]]:
    """The rate of a purchase at a tier during campaigns, the tier and campaigns that
    multiply it (for a refusal's message), the reason its entry gives (every factor of
    the points (P2), the earn rate first when it is not 1, so that the agent's sum comes
    out; within the ledger's column: rates_reason), and the rate without each campaign
    in turn: worked out once per programme, tier and campaigns, not per purchase."""
    key = (tier.id, *(campaign.id for campaign in campaigns))
    if key not in plan.earnings:
        multipliers = [campaign.multiplier for campaign in campaigns]
        definition = plan.purchase_definition
        earn_rate = definition.earn_rate

        def rate(skipped=None) -> Decimal:
            kept = [m for i, m in enumerate(multipliers) if i != skipped]
            return points_per_unit(earn_rate, tier.multiplier, kept)

        factors = [(tier.name, tier.multiplier)] + [(c.name, c.multiplier) for c in campaigns]
        multiplied_by = ", ".join(multiplier_label(*factor) for factor in factors)
        if earn_rate != 1:
            factors.insert(0, (definition.name, earn_rate))
        reason = rates_reason(factors, LedgerEntry.REASON_LENGTH)
        without = [rate(i) for i in range(len(campaigns))]
        plan.earnings[key] = rate(), multiplied_by, reason, without
    return plan.earnings[key]


@idempotent
def record_purchase(
    *, member, amount, occurred_at, external_id, channel=Channel.API, store="", by=None, now=None
) -> Transaction:
    """A purchase earns at the effective tier's multiplier and the running campaigns (P2,
    P3). `by`: the account that recorded it (an API key's), on its entries. `now`: when
    it is recorded, by default the current time (a purchase a full period old restores
    only what its date leaves, D3)."""
    now = now or timezone.now()
    fields = transaction_fields(
        kind=Transaction.Kind.PURCHASE,
        external_id=external_id,
        occurred_at=occurred_at,
        channel=channel,
        store=store,
        amount=amount,
    )
    if unlocked_purchases() and (txn := _record_purchase_unlocked(member, fields, by, now)):
        return txn
    with transaction.atomic():
        lock_referrer_first(member)
        member, plan, recorded_id = lock(member, external_id)
        if existing := recorded_before(recorded_id, member_id=member.pk, **fields):
            return existing
        referral = referral_due(member, plan)  # before the purchase counts
        log = TierLog()
        txn, entries = _purchase_transaction(member, plan, log, fields, by, now)
        post_transaction(member, plan, txn, entries, at=occurred_at, log=log, by=by)
        if referral:
            pay_referral(member, referral, at=occurred_at, external_id=external_id, by=by)
    return txn


def unlocked_purchases() -> bool:
    """Whether a purchase may be written in one statement without the member lock: not
    when it must also write its webhook event, in the same transaction."""
    return sql.writes_unlocked() and not events.wanted(events.EventType.TRANSACTION_RECORDED)


def _purchase_transaction(member, plan: Programme, log: TierLog, fields, by, now):
    earned = purchase_earning(
        member,
        plan,
        log,
        amount=fields["amount"],
        at=fields["occurred_at"],
        channel=fields["channel"],
        store=fields["store"],
        now=now,
        by=by,
    )
    # Recorded at `now`: a tier change explained later counts only the purchases known
    # when it was made (points.explanations).
    txn = Transaction(member=member, created_by=by, created_at=now, **fields)
    return txn, [entry_of(member, earned, transaction=txn, created_by=by)] if earned else []


def _record_purchase_unlocked(member, fields, by, now) -> Transaction | None:
    """The common purchase in two statements and no lock: read the member, apply the
    rules, then write everything in one statement that updates the member only if its
    caches are still those read. Any writer in between changes them (a purchase
    depends on nothing else, but the referrer a merge may give it: compared too), and
    then nothing is written.

    None when it did not write: another writer came between, the id was recorded
    before (skipped or refused), the purchase changes a tier, whose history rows
    must commit with it, or it pays a referral, another member's points, or the member
    is degraded: the purchase may restore them (D3), which withdraws the messages of
    the drops it undoes under their lock. record_purchase then records it under the
    member lock."""
    member, plan, recorded_id = lock(member, fields["external_id"], for_update=False)
    if recorded_id is not None or referral_due(member, plan) or degraded(member, plan.ranking):
        return None
    read = sql.cached(member)
    log = TierLog()
    txn, entries = _purchase_transaction(member, plan, log, fields, by, now)
    entries = apply_entries(
        member, plan, entries, at=fields["occurred_at"], log=log, by=by, transaction=txn
    )
    if log or not sql.insert_transaction(member, txn, entries, unless_changed=read):
        return None
    written(txn, entries)
    return txn


@idempotent
def award_action(
    *, member, definition, occurred_at, external_id, channel=Channel.API, store="", by=None
) -> Transaction:
    """An action (a referral, a review) earns the definition's fixed points. One recorded
    before is reported as skipped (P8) even if its definition was retired since.
    `store`: where it happened (a till's), if anywhere."""
    check_transaction(
        external_id=external_id, occurred_at=occurred_at, channel=channel, store=store
    )
    fields = dict(
        external_id=external_id,
        kind=Transaction.Kind.ACTION,
        occurred_at=occurred_at,
        definition=definition,
        channel=channel,
        store=store,
    )
    with transaction.atomic():
        member, plan, recorded_id = lock(member, external_id)
        if existing := recorded_before(recorded_id, member_id=member.pk, **fields):
            return existing
        check_receives(member)
        if definition.kind != PointDefinition.Kind.ACTION or not definition.is_active:
            raise ValidationError({"definition": f"{definition} is not an active action."})
        if definition.awarded_on:  # once per member or friend: the programme's own
            occasion = definition.get_awarded_on_display().lower()
            raise ValidationError(
                {"definition": f"{definition} is given by the programme itself ({occasion})."}
            )
        txn = Transaction(member=member, created_by=by, **fields)
        earned = earning(definition, definition.points, at=occurred_at, reason=definition.name)
        entries = (
            [entry_of(member, earned, transaction=txn, created_by=by)] if earned.points else []
        )
        post_transaction(member, plan, txn, entries, at=occurred_at, by=by)
    return txn
