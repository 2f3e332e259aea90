"""Merging a customer's duplicate account into the one they keep (DESIGN.md, "Member
360", Merge). The contract names it members.services.merge_members; the rule lives
here, beside the ledger it writes and the tier rules it applies.

- Everything the duplicate holds moves by ledger entries of kind `merge`, one out of
  the duplicate and one into the survivor for each kind of points: available now,
  pending until each date (still pending until that date on the survivor),
  tier-counting or not. Nothing is edited: afterwards every sum of the duplicate's
  ledger is zero, now and at any later date, and the survivor's has what it had.
- The survivor is requalified (T2) with the lifetime points of both; its highest tier
  ever reached is the higher of both first, so a tier-up bonus is paid only for a tier
  neither account had reached. Its last purchase is the later of both (D2 counts from
  it); a merge is no purchase, so it restores no degraded tier (D3).
- A status match running on the duplicate ends; it goes on for the survivor, to its
  last day, when it gives more than the survivor has: a tier above the survivor's
  qualified tier and its own match, or the same tier as its match for longer.
- A freeze is the customer's: the survivor carries the later of both accounts'
  freezes, with its reason, so that what the duplicate's protected (its points at a
  cutoff, its tier from degradation) stays protected, and inactivity counts from the
  later end; the duplicate's running freeze ends.
- The duplicate is closed (`merged_into`): back to the entry tier with no points, it
  earns, redeems and is adjusted no more, and its customer code names the survivor
  (members.selectors). Accounts merged into it before now name the survivor too. Its
  unsent expiry reminders are dropped: the points they name have moved.
  The survivor's expiry reminders whose figure the merge changed are told again.
  Its redemptions stay where they are; cancelling one refunds the survivor. Its point
  requests still waiting for a supervisor (goodwill above a limit) go to the survivor:
  approved, they give the customer the points on the account they keep.
- Refused: a member into itself, into a closed (merged) or erased member, a duplicate
  merged already, and while an expiry cutoff has passed but not yet been processed
  (the duplicate's expiring points would escape it: merge once the job has run).
- One database transaction, both members locked in id order; both members' admin
  history says who merged them, why, and what moved."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, DateTimeField, F, Sum, Value, When
from django.utils import timezone

from core import figures
from core.staff_input import clean_reason
from core.words import shortened
from members.models import Member, Notification
from members.services import carried_freeze_noted, drop_unsent
from points.models import AdjustmentRequest, LedgerEntry
from points.selectors import Balances, Programme, balances, pending_by_member, programme, summary_of
from points.services.expiry import refuse_until_expiry_ran, retell_after_merge
from points.services.posting import MEMBER_CACHE_FIELDS, Movement, credit, entry_of
from points.services.rules import check_spends
from tiers.selectors import frozen_last_day
from tiers.services import Reason as TierReason
from tiers.services import TierLog, drops_missed, hold_granted_tier, move_status_grant

Kind = LedgerEntry.Kind
MERGED_FIELDS = ["merged_into", "merge_survivor", "merged_at", "merged_into_at", "merged_by"]
GRANT_FIELDS = ["granted_tier", "granted_until"]
FREEZE_FIELDS = ["frozen_until", "freeze_reason"]


@dataclass
class Merge:
    """A merge worked out in memory on two member rows: the rows as the merge leaves
    them, the entries it writes, its tier history, and what it moves."""

    survivor: Member
    duplicate: Member
    entries: list
    log: TierLog
    available: int  # moved, available at once
    pending: int  # moved, pending until their dates
    pending_sum: int  # the duplicate's pending entries summed (may be below zero)
    lifetime: int  # moved, tier-counting
    bonus: int  # the survivor's tier-up bonus, if it reaches a tier neither had
    carried: bool  # the duplicate's status match goes on for the survivor
    freeze: dict | None  # the duplicate's running freeze the survivor carries on
    referral: Member | None  # the referrer the survivor takes over (_carries_referral)


def check_merge(survivor: Member, duplicate: Member, *, now) -> None:
    """The refusals of a merge, on the two members as read (locked, to merge)."""
    if survivor.pk == duplicate.pk:
        raise ValidationError("A member cannot be merged into itself: choose the other account.")
    if duplicate.merged_into_id:
        into = _code(duplicate.merged_into_id)
        raise ValidationError(f"{duplicate.external_id} was already merged into {into}.")
    if survivor.merged_into_id:
        into = _code(survivor.merged_into_id)
        raise ValidationError(
            f"{survivor.external_id} is closed (merged into {into}): merge into {into} instead."
        )
    if survivor.erased_at:
        raise ValidationError(
            f"{survivor.external_id} was erased: nothing can be merged into an erased member."
        )
    check_spends(duplicate, refused="it is merged into no account")
    refuse_until_expiry_ran("merge", now=now)


def _code(member_id: int) -> str:
    return Member.objects.values_list("external_id", flat=True).get(pk=member_id)


def _reason(reason) -> str:
    reason = clean_reason(
        reason,
        errors := {},
        missing="Say why the accounts are merged.",
        limit=LedgerEntry.REASON_LENGTH,
    )
    if errors:
        raise ValidationError(errors)
    return reason


def _buckets(duplicate: Member, now):
    """The duplicate's ledger summed by kind of points: (redeemable, counts toward the
    tier, pending until: None when available now). Non-zero sums only."""
    pending_until = Case(
        When(redeemable=True, accrue_at__gt=now, then=F("accrue_at")),
        default=Value(None),
        output_field=DateTimeField(),
    )
    rows = (
        LedgerEntry.objects.filter(member=duplicate)
        .order_by()
        .annotate(pending_until=pending_until)
        .values_list("redeemable", "counts_toward_tier", "pending_until")
        .annotate(total=Sum("points"))
    )
    return sorted((row for row in rows if row[3]), key=lambda row: (row[2] or now, row[0], row[1]))


def work_out(survivor: Member, duplicate: Member, plan: Programme, *, now, reason, by) -> Merge:
    """The merge on two member rows, in memory: changes both rows as the merge leaves
    them and returns the entries and tier history to write. The preview and the merge
    both call it, so the confirmation page shows what the merge does."""
    log = TierLog()
    outs, ins = [], []
    moved = {"available": 0, "pending": 0, "lifetime": 0}
    for redeemable, counts, pending_until, total in _buckets(duplicate, now):
        if redeemable:
            moved["pending" if pending_until else "available"] += total
        if counts:
            moved["lifetime"] += total
        for member, points, words in (
            (duplicate, -total, f"Merged into {survivor.external_id}"),
            (survivor, total, f"Merged from {duplicate.external_id}"),
        ):
            # Counted as the entries it sums, available when they are.
            move = Movement(
                Kind.MERGE,
                points,
                None,
                counts,
                redeemable,
                now,
                pending_until or now,
                shortened(f"{words}: {reason}", LedgerEntry.REASON_LENGTH),
            )
            (outs if member is duplicate else ins).append(entry_of(member, move, created_by=by))
    ranking = plan.ranking
    # The highest tier ever reached, and the last purchase, are the better of both.
    if ranking.higher(duplicate.best_tier_id, survivor.best_tier_id):
        survivor.best_tier_id = duplicate.best_tier_id
    if referral := _carries_referral(survivor, duplicate):
        survivor.referred_by_id = duplicate.referred_by_id
    # Nights whose run did not happen yet would have dropped the survivor: a merge is no
    # purchase, so those drops stay (D2), which the duplicate's later purchase would hide.
    drops_missed(survivor, ranking, plan.degradation, at=now, now=now, log=log, undone=False)
    survivor.last_purchase_at = _later(survivor.last_purchase_at, duplicate.last_purchase_at)
    match = duplicate.granted_tier_id, duplicate.granted_until
    duplicate.granted_tier_id = duplicate.granted_until = None  # closed: it holds no tier
    credit(duplicate, plan, outs, at=now, log=log, reason=TierReason.MERGE, by=by)
    bonus = credit(survivor, plan, ins, at=now, log=log, reason=TierReason.MERGE, by=by)
    carried = _carries(survivor, *match, ranking, today=timezone.localdate(now))
    if carried:
        survivor.granted_tier_id, survivor.granted_until = match
    freeze = _carry_freeze(survivor, duplicate, now=now)
    for member in (duplicate, survivor):
        hold_granted_tier(member, ranking, at=now, log=log, reason=TierReason.MERGE, by=by)
    if carried:
        log.tell_from_last_change(survivor.pk)
    entries = outs + ins
    if bonus:
        entries.append(entry_of(survivor, bonus, created_by=by))
    return Merge(
        survivor,
        duplicate,
        entries,
        log,
        available=moved["available"],
        pending=max(moved["pending"], 0),
        pending_sum=moved["pending"],
        lifetime=moved["lifetime"],
        bonus=bonus.points if bonus else 0,
        carried=carried,
        freeze=freeze,
        referral=duplicate.referred_by if referral else None,
    )


def _carry_freeze(survivor: Member, duplicate: Member, *, now) -> dict | None:
    """The later of both freezes on the survivor (a freeze ended counts too: inactivity
    counts from its end), the duplicate's running one ended. Returns the duplicate's
    running freeze when the survivor carries it on: its last day and reason, and the
    survivor's own last day, if frozen."""
    carried = None
    if duplicate.frozen_until and (
        survivor.frozen_until is None or duplicate.frozen_until > survivor.frozen_until
    ):
        if duplicate.frozen_at(now):
            own = frozen_last_day(survivor) if survivor.frozen_at(now) else None
            until = frozen_last_day(duplicate)
            carried = {"until": until, "reason": duplicate.freeze_reason, "survivor_until": own}
        survivor.frozen_until = duplicate.frozen_until
        survivor.freeze_reason = duplicate.freeze_reason
    if duplicate.frozen_at(now):
        duplicate.frozen_until = now
    return carried


def _carries_referral(survivor: Member, duplicate: Member) -> bool:
    """Whether the survivor takes over the duplicate's referral: a friend who merged the
    account they were referred on, before either account bought, is still the friend
    who came, and their first purchase, on the account kept, pays the referrer (once:
    the duplicate, closed, buys nothing). A survivor referred on its own, or that has
    bought, keeps what it has."""
    return (
        duplicate.referred_by_id is not None
        and survivor.referred_by_id is None
        and duplicate.last_purchase_at is None
        and survivor.last_purchase_at is None
        and duplicate.referred_by_id != survivor.pk
    )


def _carries(survivor: Member, tier_id, until, ranking, *, today) -> bool:
    """Whether the duplicate's status match (tier_id until `until`; None: none) gives
    the survivor more than it has once requalified: a tier above the one its points
    give it (lower while it is degraded), and above its own match."""
    by_points = survivor.qualified_tier_id
    if ranking.higher(by_points, survivor.effective_tier_id):
        by_points = survivor.effective_tier_id  # degraded
    if tier_id is None or until < today or not ranking.higher(tier_id, by_points):
        return False
    own, own_until = survivor.granted_tier_id, survivor.granted_until
    if own is None or own_until < today:
        return True
    return ranking.higher(tier_id, own) or (tier_id == own and until > own_until)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def merge_preview(*, survivor: Member, duplicate: Member, now=None) -> dict:
    """What merging `duplicate` into `survivor` would do, nothing written: both members
    as they are (points_summary's figures, best tier, last purchase), the survivor as
    the merge would leave it, and what moves. Raises the merge's refusals."""
    now = now or timezone.now()
    survivor = Member.objects.get(pk=survivor.pk)
    duplicate = Member.objects.get(pk=duplicate.pk)
    check_merge(survivor, duplicate, now=now)
    plan = programme()
    ranking = plan.ranking
    before = {
        "survivor": _figures(survivor, balances(survivor, now=now), ranking),
        "duplicate": _figures(duplicate, balances(duplicate, now=now), ranking),
    }
    pending = pending_by_member([survivor.pk], now=now).get(survivor.pk, 0)
    merge = work_out(survivor, duplicate, plan, now=now, reason="", by=None)
    after = Balances.of(survivor, pending + merge.pending_sum)
    return {
        "now": now,
        "survivor": survivor,
        "duplicate": duplicate,
        "before": before,
        "after": _figures(survivor, after, ranking),
        "moved": {
            "available": merge.available,
            "pending": merge.pending,
            "lifetime": merge.lifetime,
        },
        "bonus": merge.bonus,
        "freeze": merge.freeze,
        "referral": merge.referral,
    }


def _figures(member: Member, figures: Balances, ranking) -> dict:
    return {
        **summary_of(member, ranking, figures=figures),
        "best_tier": ranking.by_pk[member.best_tier_id],
        "last_purchase_at": member.last_purchase_at,
    }


def merge_members(*, survivor: Member, duplicate: Member, by, reason, now=None) -> Member:
    """Merge a customer's duplicate account into the one they keep: its points move,
    the survivor is requalified, the duplicate is closed (module docstring). One
    database transaction; returns the survivor as the merge left it."""
    if by is None or not by.is_staff:
        raise ValidationError("A merge must name the staff user who makes it.")
    reason = _reason(reason)
    with transaction.atomic():
        locked = Member.objects.select_for_update(of=("self",)).filter(
            pk__in=[survivor.pk, duplicate.pk]
        )
        members = {member.pk: member for member in locked.order_by("pk")}
        survivor, duplicate = members[survivor.pk], members[duplicate.pk]
        # The clock is read once the locks are held, as every writer of points reads it.
        now = now or timezone.now()
        check_merge(survivor, duplicate, now=now)
        merge = work_out(survivor, duplicate, programme(), now=now, reason=reason, by=by)
        LedgerEntry.objects.bulk_create(merge.entries)
        merge.log.write()
        duplicate.merged_into = duplicate.merge_survivor = survivor
        duplicate.merged_by = by
        duplicate.merged_at = duplicate.merged_into_at = now
        closed = MEMBER_CACHE_FIELDS + MERGED_FIELDS + GRANT_FIELDS + FREEZE_FIELDS
        duplicate.save(update_fields=closed)
        survivor.save(
            update_fields=MEMBER_CACHE_FIELDS + GRANT_FIELDS + FREEZE_FIELDS + ["referred_by"]
        )
        move_status_grant(
            duplicate=duplicate, survivor=survivor, carried=merge.carried, now=now, by=by
        )
        # `merged_into` always names an open member: one step finds the survivor. Their
        # purchases are the survivor's from now on, not from their own merge (M7); the
        # account their own merge named stays (merge_survivor), for their pages.
        Member.objects.filter(merged_into=duplicate).update(
            merged_into=survivor, merged_into_at=now
        )
        # The customer's goodwill still waiting is given on the account they keep.
        AdjustmentRequest.objects.filter(
            member=duplicate, status=AdjustmentRequest.Status.PENDING
        ).update(member=survivor)
        # The survivor's points at stake now hold the duplicate's: told once more (E4).
        retell_after_merge(survivor=survivor, duplicate=duplicate, now=now)
        # Its points are no longer there: no reminder that they expire (E4), nor any
        # other message about the closed account (a tier-up whose bonus moved).
        # Why, naming no customer code: the delivery's page names its member as it is
        # now, and an erasure leaves no code behind (rules.md, Erasing a member).
        drop_unsent(
            duplicate, Notification.objects.all(), why="the account was merged into another"
        )
        _history(merge, by=by, reason=reason)
        figures.stale()
    return survivor


def _history(merge: Merge, *, by, reason: str) -> None:
    """The merge in both members' admin history, by the staff user, with the reason."""
    survivor, duplicate = merge.survivor, merge.duplicate
    moved = (
        f"{merge.available:,} available, {merge.pending:,} pending and "
        f"{merge.lifetime:,} lifetime points"
    )
    more = f"; tier-up bonus {merge.bonus:,} points" if merge.bonus else ""
    if merge.freeze:
        more += "; " + carried_freeze_noted(
            duplicate.external_id, merge.freeze["until"], merge.freeze["reason"]
        )
    content_type = ContentType.objects.get_for_model(Member)
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                user_id=by.pk,
                content_type=content_type,
                object_id=str(member.pk),
                object_repr=str(member)[:200],
                action_flag=CHANGE,
                change_message=message,
            )
            for member, message in (
                (duplicate, f"Merged into {survivor.external_id}: {reason}. Moved {moved}."),
                (
                    survivor,
                    f"Merged {duplicate.external_id} into this member: {reason}. "
                    f"Received {moved}{more}.",
                ),
            )
        ]
    )
