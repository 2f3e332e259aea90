"""Tier status: qualification (T2), recalculation (T3), history (T4), degradation and
restoration (D1-D4), status matches (grant_status) and their end."""

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from operator import attrgetter

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, F, Q, Value, When
from django.utils import timezone

from core import events, figures
from core.bulk import bulk_insert, reserve_ids
from core.jobs import id_chunks
from core.models import WebhookDelivery
from core.staff_input import check_last_day, clean_reason
from members.models import Member, Notification, TierChange
from members.selectors import check_open
from tiers.models import DegradationPolicy, StatusGrant, Tier
from tiers.selectors import Ranking, members_to_degrade, misqualified_by_tier

Reason = TierChange.Reason
TIER_CHANGED = events.EventType.MEMBER_TIER_CHANGED


@dataclass(slots=True)
class _Change:
    """A tier change (T4) to write: the fields of its TierChange (_CHANGE_FIELDS)."""

    member_id: int
    reason: str
    from_tier_id: int | None
    to_tier_id: int
    qualified_tier_id: int
    changed_at: datetime
    created_by_id: int | None
    pk: int | None = None  # once written


@dataclass(slots=True)
class _Message:
    """A message to a member about a tier change, to write as a Notification."""

    member_id: int
    kind: str
    change: _Change
    context: dict


_CHANGE_FIELDS = [f.name for f in fields(_Change) if f.name != "pk"]


class TierLog(list):
    """The tier changes (T4) and messages to members one write produces, saved together
    once the write is complete, whether it is one purchase or a whole import. Kept as
    plain records, not model objects: an import makes tens of thousands."""

    def write(self) -> None:
        """Save through the ORM: the few rows of one member's write."""
        records = self._changes()
        changes = [
            TierChange(**{name: getattr(r, name) for name in _CHANGE_FIELDS}) for r in records
        ]
        bulk_insert(TierChange, changes)
        for record, change in zip(records, changes, strict=True):
            record.pk = change.pk
        events.record_many(TIER_CHANGED, [(c.member_id, c.pk) for c in records])
        bulk_insert(
            Notification,
            [
                Notification(
                    member_id=m.member_id,
                    kind=m.kind,
                    tier_change_id=m.change.pk,
                    context=m.context,
                )
                for m in self._messages()
            ],
        )
        self.clear()

    def tables(self) -> list:
        """The rows to write, as (model, columns, rows) for core.bulk.CopyBehind:
        the changes first, then the messages and webhook events that name them."""
        changes, messages = self._changes(), self._messages()
        for change, pk in zip(changes, reserve_ids(TierChange, len(changes)), strict=True):
            change.pk = pk
        values = attrgetter("pk", *_CHANGE_FIELDS)
        now = timezone.now()
        tables = [
            (TierChange, ["id", *_CHANGE_FIELDS], [values(c) for c in changes]),
            (
                Notification,
                ["id", "member_id", "kind", "tier_change_id", "context", "created_at"],
                [
                    (pk, m.member_id, m.kind, m.change.pk, m.context, now)
                    for m, pk in zip(
                        messages, reserve_ids(Notification, len(messages)), strict=True
                    )
                ],
            ),
            (
                WebhookDelivery,
                events.DELIVERY_COLUMNS,
                events.delivery_rows(TIER_CHANGED, [(c.member_id, c.pk) for c in changes]),
            ),
        ]
        self.clear()
        return tables

    def _changes(self):
        return [x for x in self if isinstance(x, _Change)]

    def _messages(self):
        return [x for x in self if isinstance(x, _Message)]


def _record_change(member, log: TierLog, *, reason, from_tier_id, at, by=None) -> _Change:
    change = _Change(
        member.pk,
        reason,
        from_tier_id,
        member.effective_tier_id,
        member.qualified_tier_id,
        at,
        by.pk if by else None,
    )
    log.append(change)
    return change


def _notify(member, log: TierLog, kind, change: _Change, **context) -> None:
    log.append(_Message(member.pk, kind, change, context))


def requalify(
    member: Member, ranking: Ranking, *, at, log: TierLog, reason=None, by=None
) -> Tier | None:
    """Recompute the qualified tier after a ledger write (T2), on the locked member.

    Changes the member in memory (the caller saves it), logs the change (T4) and a
    tier-up message. Returns the tier reached for the first time, if any: the caller
    pays its bonus.
    """
    new = ranking.qualified_for(member.lifetime_points)
    if new.id == member.qualified_tier_id:
        return None
    went_up = ranking.higher(new.id, member.qualified_tier_id)
    from_tier_id = member.effective_tier_id
    _follow_qualified(member, ranking, new)
    reason = reason or (Reason.UPGRADE if went_up else Reason.DOWNGRADE)
    change = _record_change(member, log, reason=reason, from_tier_id=from_tier_id, at=at, by=by)
    if not ranking.higher(new.id, member.best_tier_id):
        return None
    member.best_tier_id = new.id
    _notify(member, log, Notification.Kind.TIER_UP, change, bonus=new.upgrade_bonus_points)
    return new


def open_at_tier(member, ranking: Ranking, *, at, log: TierLog) -> bool:
    """A programme migrating in: after its opening balances, the member holds the tier
    its lifetime points reach, as it did in the programme before. Not a tier-up (T2):
    no bonus and no message; the highest tier ever reached rises to it, so that only a
    tier above it pays a bonus later. Recorded (T4) with reason opening_balance.

    `member` is a Member or any record with its pk, tier ids and lifetime_points (the
    import keeps plain records); changed in memory, the caller writes it. Returns
    whether the tier changed."""
    new = ranking.qualified_for(member.lifetime_points)
    if new.id == member.qualified_tier_id:
        return False
    from_tier_id = member.effective_tier_id
    _follow_qualified(member, ranking, new)
    if ranking.higher(new.id, member.best_tier_id):
        member.best_tier_id = new.id
    _record_change(member, log, reason=Reason.OPENING_BALANCE, from_tier_id=from_tier_id, at=at)
    return True


def _degraded(member, ranking: Ranking) -> bool:
    """Below the qualified tier (D2). A status match can only hold a member above it."""
    return ranking.higher(member.qualified_tier_id, member.effective_tier_id)


def _follow_qualified(member, ranking: Ranking, new: Tier) -> None:
    """The member now qualifies for `new` (T2): the effective tier follows, except that
    a degraded member stays degraded until a purchase (D3), never above the new tier;
    and a running status match holds it at least at the granted tier."""
    if not _degraded(member, ranking) or ranking.higher(member.effective_tier_id, new.id):
        member.effective_tier_id = new.id
    member.qualified_tier_id = new.id
    granted = getattr(member, "granted_tier_id", None)  # the members import's records: none
    if granted and ranking.higher(granted, member.effective_tier_id):
        member.effective_tier_id = granted


def restore(member: Member, ranking: Ranking, *, at, log: TierLog, by=None) -> None:
    """D3: a purchase gives a degraded member their qualified tier back at once, before
    the purchase's points are computed. Changes the locked member in memory; `by`, the
    account that recorded the purchase, is on the history row."""
    if not _degraded(member, ranking):
        return
    from_tier_id = member.effective_tier_id
    member.effective_tier_id = member.qualified_tier_id
    change = _record_change(
        member, log, reason=Reason.RESTORATION, from_tier_id=from_tier_id, at=at, by=by
    )
    _notify(member, log, Notification.Kind.RESTORATION, change)


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
            # Effective follows qualified, except that a degraded member stays degraded
            # (capped at the new tier) until a purchase restores them (D3).
            above = [t.pk for t in ranking.tiers if t.threshold > tier.threshold]
            below = [t.pk for t in ranking.tiers if t.threshold < tier.threshold]
            follows = Q(effective_tier=F("qualified_tier")) | Q(effective_tier__in=above)
            changes = band.annotate(
                target=Case(
                    # A status match above the new tier holds the member at it; one at or
                    # below it is reached: the member follows the new tier.
                    When(granted_tier__in=above, then=F("granted_tier")),
                    When(follows | Q(granted_tier__isnull=False), then=Value(tier.pk)),
                    default=F("effective_tier"),
                    output_field=BigIntegerField(),
                ),
                new_qualified=Value(tier.pk),
            )
            changed += _apply_changes(changes, reason=Reason.RULES_CHANGED, at=now)
            band.filter(best_tier__in=below).update(best_tier=tier)
            band.update(qualified_tier=tier)
        if changed:
            figures.stale()
            events.record_bulk(
                TIER_CHANGED, TierChange, reason=Reason.RULES_CHANGED, changed_at=now
            )
    return changed


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
def degrade_chunk(*, now, first_id: int, last_id: int) -> int:
    """D2 for the members with ids in [first_id, last_id]: a fixed handful of statements
    whatever their number. The result depends only on `now` and each member's last
    purchase, so a second run, or a late one, gives the same tiers as one run on time.
    Returns the number of members moved.

    Status matches whose last day has passed end first (end_status_grants), so that
    the members they held degrade in the same run as their inactivity says."""
    ranking = Ranking()
    end_status_grants(ranking, now=now, first_id=first_id, last_id=last_id)
    changes = members_to_degrade(DegradationPolicy.current(), ranking, now).filter(
        pk__gte=first_id, pk__lte=last_id
    )
    changed = _apply_changes(
        changes.annotate(new_qualified=F("qualified_tier")), reason=Reason.DEGRADATION, at=now
    )
    if changed:
        figures.stale()
        events.record_bulk(
            TIER_CHANGED,
            TierChange,
            reason=Reason.DEGRADATION,
            changed_at=now,
            member__gte=first_id,
            member__lte=last_id,
        )
        _queue_notifications(
            Reason.DEGRADATION,
            Notification.Kind.DEGRADATION,
            at=now,
            first_id=first_id,
            last_id=last_id,
        )
    return changed


def _apply_changes(changes, *, reason, at) -> int:
    """Move a set of members to new tiers: lock them, record one history row each (T4),
    then set their effective tier to `target`. `changes` is a Member queryset annotated
    with `target` (the new effective tier id) and `new_qualified`.

    Locking first makes a purchase running at the same time wait, so the history and
    the update see the same rows. (SQLite has no row locks: its write transaction
    already excludes other writers.)"""
    if changes.query.is_empty():
        return 0
    if connection.features.has_select_for_update_of:
        sql, params = changes.select_for_update(of=("self",)).values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({sql}) AS locked", params)
    rows = changes.annotate(from_tier=F("effective_tier"))
    sql, params = rows.values("pk", "from_tier", "target", "new_qualified").query.sql_with_params()
    history = TierChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {history}
                (member_id, reason, from_tier_id, to_tier_id, qualified_tier_id, changed_at)
            SELECT s.pk, %s, s.from_tier, s.target, s.new_qualified, %s
            FROM ({sql}) s
            """,
            [reason, connection.ops.adapt_datetimefield_value(at), *params],
        )
        changed = cursor.rowcount
    changes.update(effective_tier=F("target"))
    return changed


def _queue_notifications(reason, kind, *, at, first_id, last_id) -> None:
    """One outbox message per tier change of this run, for the members with ids in
    [first_id, last_id], not yet announced (D4)."""
    outbox, history = Notification._meta.db_table, TierChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {outbox} (member_id, kind, context, tier_change_id, created_at)
            SELECT h.member_id, %s, '{{}}', h.id, %s FROM {history} h
            WHERE h.reason = %s AND h.changed_at = %s AND h.member_id BETWEEN %s AND %s
              AND NOT EXISTS (SELECT 1 FROM {outbox} n WHERE n.tier_change_id = h.id)
            """,
            [
                kind,
                connection.ops.adapt_datetimefield_value(at),
                reason,
                connection.ops.adapt_datetimefield_value(at),
                first_id,
                last_id,
            ],
        )


# A status match lasts at most this long: a longer one is a typo, or a tier to qualify for.
MAX_STATUS_MATCH_DAYS = 731
REASON_LENGTH = StatusGrant._meta.get_field("reason").max_length


def grant_status(*, member, tier: Tier, until: date, reason: str, by, now=None) -> StatusGrant:
    """A status match: the member's effective tier is `tier` until the end of `until`
    (in TIME_ZONE), whatever degradation says; then the rules apply again (the nightly
    degradation job ends it: end_status_grants). Only above the qualified tier; no
    tier-up bonus and the highest tier ever reached is unchanged, so really qualifying
    for the tier later pays its bonus (T2). A new match replaces a running one.
    Recorded in the tier history (T4) and sent as member.tier_changed."""
    now = now or timezone.now()
    errors = {}
    missing = "Say why the tier is granted (e.g. the competitor's card)."
    reason = clean_reason(reason, errors, missing=missing, limit=REASON_LENGTH)
    today = timezone.localdate(now)
    check_last_day(
        until,
        errors,
        earliest=today + timedelta(days=1),
        latest=today + timedelta(days=MAX_STATUS_MATCH_DAYS),
        missing="Give the status match's last day: a date after today.",
        too_late="A status match lasts at most two years: give an earlier last day.",
    )
    if by is None or not by.is_staff:
        errors["__all__"] = "A status match must name the staff user who grants it."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The member's lock, as every writer of its tier takes it.
        member = Member.objects.select_for_update(of=("self",)).get(pk=member.pk)
        check_open(member)
        ranking = Ranking()
        if not ranking.higher(tier.pk, member.qualified_tier_id):
            qualified = ranking.by_pk[member.qualified_tier_id]
            raise ValidationError(
                {
                    "tier": f"{member.external_id} already qualifies for {qualified}: a status "
                    "match grants a higher tier."
                }
            )
        StatusGrant.objects.filter(member=member, ended_at=None).update(
            ended_at=now, end=StatusGrant.End.REPLACED
        )
        grant = StatusGrant(
            member=member, tier=tier, until=until, reason=reason, granted_by=by, granted_at=now
        )
        grant.full_clean()
        grant.save()
        # Above the qualified tier, so above anything degradation gives: the granted tier.
        from_tier_id = member.effective_tier_id
        member.granted_tier_id = member.effective_tier_id = tier.pk
        member.granted_until = until
        log = TierLog()
        _record_change(
            member, log, reason=Reason.STATUS_MATCH, from_tier_id=from_tier_id, at=now, by=by
        )
        log.write()
        member.save(update_fields=["granted_tier", "granted_until", "effective_tier"])
    return grant


def hold_granted_tier(member, ranking: Ranking, *, at, log: TierLog, reason, by=None) -> None:
    """The effective tier as the member's status match leaves it once a merge moved or
    ended one (in memory, the change recorded, T4): at least the granted tier while a
    match runs; without one, no higher than the qualified tier."""
    target = member.effective_tier_id
    if member.granted_tier_id and ranking.higher(member.granted_tier_id, target):
        target = member.granted_tier_id
    elif not member.granted_tier_id and ranking.higher(target, member.qualified_tier_id):
        target = member.qualified_tier_id
    if target != member.effective_tier_id:
        from_tier_id, member.effective_tier_id = member.effective_tier_id, target
        _record_change(member, log, reason=reason, from_tier_id=from_tier_id, at=at, by=by)


def move_status_grant(*, duplicate, survivor, carried: bool, now, by) -> None:
    """A merge ends the duplicate's running status match; `carried`: it goes on for the
    survivor until its last day, in place of the survivor's own (the members already
    hold the tiers: hold_granted_tier)."""
    running = StatusGrant.objects.filter(member=duplicate, ended_at=None).first()
    if running is None:
        return
    StatusGrant.objects.filter(pk=running.pk).update(ended_at=now, end=StatusGrant.End.MERGED)
    if not carried:
        return
    StatusGrant.objects.filter(member=survivor, ended_at=None).update(
        ended_at=now, end=StatusGrant.End.REPLACED
    )
    reason = f"Carried over from {duplicate.external_id} (merged): {running.reason}"
    StatusGrant.objects.create(
        member=survivor,
        tier_id=running.tier_id,
        until=running.until,
        reason=reason[:REASON_LENGTH],
        granted_by=by,
        granted_at=now,
    )


def end_status_grants(ranking: Ranking, *, now, first_id: int, last_id: int) -> int:
    """End the status matches whose last day is before today (in TIME_ZONE) for the
    members with ids in [first_id, last_id], set-based: one history row each (reason
    status match ended, sent as member.tier_changed), the effective tier back to the
    qualified one where the grant held it above (the degradation that follows in the
    same run applies the member's inactivity), the grant closed. Idempotent: an ended
    grant is not running any more. Returns the number of grants ended."""
    today = timezone.localdate(now)
    members = Member.objects.filter(
        pk__gte=first_id, pk__lte=last_id, granted_tier__isnull=False, granted_until__lt=today
    )
    ended = StatusGrant.objects.filter(ended_at=None, until__lt=today, member__in=members)
    # Most nights none ends: one look at the running grants' index instead of the members.
    if not StatusGrant.objects.filter(
        ended_at=None, until__lt=today, member__gte=first_id, member__lte=last_id
    ).exists():
        return 0
    held_above = Q(pk__in=[])
    for tier in ranking.tiers:
        above = [t.pk for t in ranking.tiers if ranking.higher(t.pk, tier.pk)]
        held_above |= Q(qualified_tier=tier, granted_tier__in=above)
    changes = members.annotate(
        target=Case(
            When(held_above & Q(effective_tier=F("granted_tier")), then=F("qualified_tier")),
            default=F("effective_tier"),
            output_field=BigIntegerField(),
        ),
        new_qualified=F("qualified_tier"),
    )
    count = _apply_changes(changes, reason=Reason.STATUS_MATCH_ENDED, at=now)
    if count:
        ended.update(ended_at=now, end=StatusGrant.End.EXPIRED)
        members.update(granted_tier=None, granted_until=None)
        figures.stale()
        events.record_bulk(
            TIER_CHANGED,
            TierChange,
            reason=Reason.STATUS_MATCH_ENDED,
            changed_at=now,
            member__gte=first_id,
            member__lte=last_id,
        )
    return count
