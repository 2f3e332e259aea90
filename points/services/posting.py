"""The one ledger writer (P5, P7, T2): entries are built from movements, written for
a locked member with its caches and tier in the same transaction, and every service
of points (and rewards, through lock_member and post_redemption) writes through here.
The statements themselves are in points.services.sql."""

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from core import events
from core.ids import canonical_id
from core.refusals import CONFLICT
from members.models import Member
from members.selectors import (
    check_open,
    merged_codes,
    owner,
    owner_unless_erased,
    survivors_of,
)
from points.csv_rows import RowError, ids_of_bad_rows
from points.models import TIER_UP_BONUS, LedgerEntry, PointDefinition, Transaction
from points.selectors import Programme, programme
from points.services import sql
from tiers.models import Tier
from tiers.services import TierLog, follow_new_rules, requalify

Kind = LedgerEntry.Kind
MEMBER_CACHE_FIELDS = sql.MEMBER_CACHE_FIELDS


@dataclass(slots=True)
class Movement:
    """What a ledger entry says, before it is linked to a member and a transaction:
    the rules compute these, record_purchase turns them into LedgerEntry objects and
    the import into rows."""

    kind: str
    points: int
    definition_id: int | None
    counts_toward_tier: bool
    redeemable: bool
    issued_at: datetime
    accrue_at: datetime
    reason: str = ""
    campaign_points: dict[str, int] | None = None  # of a purchase: LedgerEntry's
    cutoff: date | None = None  # of an expiry entry (a late return's: late_returns)


# A movement's own columns, in the order movement_values gives them: the bulk writers
# (the imports) put them between their own in the rows they COPY.
MOVEMENT_COLUMNS = [
    "definition_id",
    "kind",
    "points",
    "counts_toward_tier",
    "redeemable",
    "issued_at",
    "accrue_at",
    "reason",
    "cutoff",
]
movement_values = attrgetter(*MOVEMENT_COLUMNS)


def movement(definition, kind, points: int, *, at, reason: str, accrue_at=None) -> Movement:
    """An entry counted as its definition says when it is written (none: redeemable,
    not tier-counting), issued at `at` and available at `accrue_at`, by default at once."""
    return Movement(
        kind,
        points,
        definition.pk if definition else None,
        definition.counts_toward_tier if definition else False,
        definition.redeemable if definition else True,
        at,
        accrue_at or at,
        reason,
    )


def earning(definition: PointDefinition, points: int, *, at, reason: str) -> Movement:
    """An earning: issued when it happened, available after the definition's delay (P5):
    the same time of day, that many days later in the programme's time zone, whatever
    offset `at` came with (a day across a clock change is 23 or 25 hours)."""
    local = timezone.localtime(at)
    # Calendar days, added to the local clock; the sum forgets which of a repeated hour's
    # two times `at` was (its fold), and no delay would make the second 02:30 the first.
    accrue_at = (local + timedelta(days=definition.accrue_delay_days)).replace(fold=local.fold)
    return movement(definition, Kind.EARN, points, at=at, reason=reason, accrue_at=accrue_at)


def entry_of(member: Member, movement: Movement, **link) -> LedgerEntry:
    return LedgerEntry(
        member=member,
        kind=movement.kind,
        points=movement.points,
        definition_id=movement.definition_id,
        counts_toward_tier=movement.counts_toward_tier,
        redeemable=movement.redeemable,
        issued_at=movement.issued_at,
        accrue_at=movement.accrue_at,
        reason=movement.reason,
        campaign_points=movement.campaign_points,
        cutoff=movement.cutoff,
        **link,
    )


def lock(
    member: Member,
    external_id: str | None = None,
    *,
    for_update: bool = True,
    follow_merge: bool = False,
):
    """Lock the member row (every writer of a member's points takes this lock first,
    but for the unlocked purchase, which reads it with `for_update=False`) and, in the
    same round trip, read the programme's version and whether `external_id` was
    recorded before. Returns (member, programme, recorded_id).

    A merged account is closed: refused, naming its survivor; or, with `follow_merge`
    (what comes back to a closed account, a cancelled redemption's refund), its
    survivor is locked and returned instead. The closed account itself is not locked
    then: nothing is written to it, and holding it while waiting for its survivor would
    take two members out of id order (a merge of the survivor into a third account,
    holding both, updates the closed account's `merged_into`): a deadlock."""
    member_id = member.pk
    if follow_merge:  # `merged_into` always names an open account, or did until a merge
        member_id = (
            Member.objects.filter(pk=member_id).values_list("merged_into", flat=True).first()
            or member_id
        )
    locked, version, recorded_id = sql.read_member(member_id, external_id, for_update)
    while follow_merge and locked.merged_into_id:  # the survivor may be merged meanwhile
        locked, version, recorded_id = sql.read_member(
            locked.merged_into_id, external_id, for_update
        )
    check_open(locked)
    return locked, programme(version), recorded_id


def post_entries(
    member: Member, plan: Programme, entries, *, at, log=None, reason=None, by=None, **link
):
    """Write entries for a locked member, update its caches and requalify it (T2).

    A tier reached for the first time pays its bonus: redeemable and not
    tier-counting, so it can never cause another tier-up.
    """
    log = TierLog() if log is None else log
    entries = apply_entries(member, plan, entries, at=at, log=log, reason=reason, by=by, **link)
    LedgerEntry.objects.bulk_create(entries)
    log.write()
    member.save(update_fields=MEMBER_CACHE_FIELDS)
    return entries


def post_transaction(
    member: Member, plan: Programme, txn: Transaction, entries, *, at, log=None, by=None
):
    """Save a new transaction with its entries for a locked member: what `post_entries`
    does, plus the transaction row (on PostgreSQL in one statement with the entries and
    the caches: sql.write_transaction)."""
    log = TierLog() if log is None else log
    entries = apply_entries(member, plan, entries, at=at, log=log, by=by, transaction=txn)
    sql.write_transaction(member, txn, entries)
    # The transaction's event before the tier change it caused, as an import sends them.
    events.record(events.EventType.TRANSACTION_RECORDED, member_id=member.pk, subject_id=txn.pk)
    log.write()
    return written(txn, entries)


def written(txn: Transaction, entries):
    """Mark a transaction just written with what it added to its member's points
    (`txn.points_added`, signed), for callers that answer with it. Returns the entries."""
    txn.points_added = sum(entry.points for entry in entries)
    return entries


def apply_entries(
    member: Member, plan: Programme, entries, *, at, log, reason=None, by=None, **link
):
    """The caches, tier and tier-up bonus that entries give a member, in memory: what
    `post_entries` writes. Returns the entries with the bonus, if any."""
    bonus = credit(member, plan, entries, at=at, log=log, reason=reason, by=by)
    if bonus:
        entries = [*entries, entry_of(member, bonus, created_by=by, **link)]
    return entries


def credit(member: Member, plan: Programme, entries, *, at, log, reason=None, by=None):
    """Count entries (LedgerEntry or Movement) in the member's caches, in memory, and
    requalify it (T2). Returns the tier-up bonus due, already counted: redeemable and
    not tier-counting, so it can never cause another tier-up. Thresholds changed since
    the member was last qualified move it first, as the rules changed (T3)."""
    follow_new_rules(member, plan.ranking, plan.degradation, log=log)
    for entry in entries:
        member.points_balance += entry.points if entry.redeemable else 0
        member.lifetime_points += entry.points if entry.counts_toward_tier else 0
    reached: Tier | None = requalify(
        member, plan.ranking, plan.degradation, at=at, log=log, reason=reason, by=by
    )
    if not (reached and reached.upgrade_bonus_points):
        return None
    member.points_balance += reached.upgrade_bonus_points
    definition = plan.definition(TIER_UP_BONUS)
    return Movement(
        Kind.BONUS,
        reached.upgrade_bonus_points,
        definition.pk,
        False,
        True,
        at,
        at,
        f"Welcome to {reached.name}",
    )


def recorded_before(recorded_id, **content) -> Transaction | None:
    """P8: the transaction already recorded under this id, marked skipped; an error
    when it was recorded with other content."""
    if recorded_id is None:
        return None
    # Recorded for an account merged since into this member: the same member.
    existing = Transaction.objects.annotate(owner_id=owner("member")).get(pk=recorded_id)
    differs = [
        field
        for field, value in content.items()
        if getattr(existing, field) != value
        and not (field == "member_id" and existing.owner_id == value)
    ]
    if differs:
        names = ", ".join(f.removesuffix("_id") for f in differs)
        message = f"Transaction {existing.external_id} was already recorded with another {names}."
        raise ValidationError({"external_id": ValidationError(message, code=CONFLICT)})
    existing.skipped = True
    return existing


def idempotent(service):
    """The ids of a transaction read as every id is (core.ids: "T-é" in either Unicode
    form is one id). When two writers race on one external_id, the unique constraint
    decides: the loser reports the winner's row as skipped, or an error if its content
    differs."""

    @functools.wraps(service)
    def wrapper(**kwargs):
        for name in ("external_id", "original_external_id"):
            if isinstance(kwargs.get(name), str):
                kwargs[name] = canonical_id(kwargs[name])
        try:
            return service(**kwargs)
        except IntegrityError:
            if not Transaction.objects.filter(external_id=kwargs.get("external_id")).exists():
                raise
            return service(**kwargs)

    return wrapper


def lock_members(codes, *, also=None) -> dict[str, Member]:
    """The members with these customer codes (a list or a subquery), locked in id order
    (the lock every writer of points takes, in the order that never deadlocks), by code:
    what an import locks before it reads what was recorded. A merged account's code
    names its survivor (the same object as the survivor's own code, if in the file).
    `also`: other members (a values queryset of `owner_id`) to lock in the same order,
    in the same statement (the referrers an import may pay); by ids read first, so that
    the lock is an index look-up."""
    named = survivors_of(codes)
    if also is None:
        locked = named.select_for_update(of=("self",)).order_by("pk")
    else:  # `also` locked (and held to the end of the transaction), but not named
        ids = set(named.values_list("pk", flat=True))
        every = sorted(ids | set(also.values_list("owner_id", flat=True)))
        both = Member.objects.filter(pk__in=every).select_for_update(of=("self",))
        locked = [m for m in both.order_by("pk") if m.pk in ids]
    # Merged while this lock waited: its survivor too (merging took the account's lock).
    return _by_code(locked, codes, more=Member.objects.select_for_update(of=("self",)))


def members_named(codes) -> dict[str, Member]:
    """lock_members' answer without the lock: for members an import only compares
    with what it recorded before."""
    return _by_code(survivors_of(codes), codes, more=Member.objects.all())


def lock_members_written_for(staged, *, also=None) -> tuple[dict, dict]:
    """An import's members once its rows are staged (`staged`: the module of its
    staging table, with mark_recorded and staged_members): (held, members). `held`:
    those it writes for (a row not recorded before), locked (lock_members, with
    `also`); `members`: those and the members whose rows were all recorded before (the
    file imported again), only compared, not locked (members_named): tills and jobs need
    not wait for them. The rows are marked recorded before the locks, and again after:
    then they see what an import before this one wrote."""
    staged.mark_recorded()
    held = lock_members(staged.staged_members(recorded=False), also=also)
    staged.mark_recorded()
    return held, members_named(staged.staged_members(recorded=True)) | held


def _by_code(found, codes, *, more) -> dict[str, Member]:
    """The members `found` for `codes`, by code, a merged code naming its survivor:
    from `more` if it is not among them."""
    members = {m.external_id: m for m in found}
    by_pk = {m.pk: m for m in members.values()}
    merged = merged_codes(codes)
    if missing := set(merged.values()) - by_pk.keys():
        by_pk.update((m.pk, m) for m in more.filter(pk__in=missing).order_by("pk"))
    for code, survivor_id in merged.items():
        members[code] = by_pk[survivor_id]
    return members


def same_owner(member: Member | None, owner_id: int | None, *, held: bool) -> bool:
    """Whether the member a row's code names (None: none, its code erased) holds what
    was recorded before under the row's id (`owner_id`, of owner_unless_erased, read
    later). A member the import did not lock, only compares (members_named), may have
    been merged or erased after it was read: then both are read again, in one statement,
    so that a merge or erasure while the file ran is not taken for other content."""
    named = member.pk if member else None
    if named == owner_id or held or named is None:
        return named == owner_id
    now = Member.objects.filter(pk__in={named, owner_id} - {None})
    owners = dict(now.values_list("pk", owner_unless_erased()))
    return owners.get(named) == owners.get(owner_id)


def distinct_members(members: dict[str, Member]) -> list[Member]:
    """The members of lock_members' answer, each once (a merged code and its
    survivor's own code name the same member)."""
    return list({member.pk: member for member in members.values()}.values())


def duplicate_lines(staged_duplicates, report) -> set[int]:
    """Report each line whose id an earlier line of the file has, good or bad, as an
    error naming the first line, and return those lines. `staged_duplicates` is the
    staging table's (core.staging.StagedTable.duplicates); the bad rows are in the
    report's errors by then."""
    pairs = staged_duplicates(also=ids_of_bad_rows(report.errors))
    for line, first_line in pairs:
        report.errors.append(RowError(line, "external_id", f"duplicate of line {first_line}"))
    return {line for line, _ in pairs}


def no_member(line: int, code: str) -> RowError:
    return RowError(line, "member", f"no member with customer code {code!r}")


def unknown_members_of_bad_rows(errors) -> list[RowError]:
    """The customer codes of rows already wrong for another reason (a kind misspelt)
    that name no member: found as the good rows' are, so that one run lists every
    wrong cell of a row, not the code only once the kind is corrected. One look-up per
    5,000 codes."""
    named = {}
    for error in errors:
        if error.member:
            named.setdefault(error.line, error.member)
    known = set()
    for codes in in_batches(set(named.values())):
        known.update(
            Member.objects.filter(external_id__in=codes).values_list("external_id", flat=True)
        )
    return [no_member(line, code) for line, code in named.items() if code not in known]


def in_batches(values, size=5000):
    """Look-ups by lists of keys in batches: SQLite takes a limited number of parameters."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def lock_member(member: Member, *, follow_merge: bool = False) -> tuple[Member, Programme]:
    """Lock a member before checking and spending its points (the same lock as every
    other writer takes). A merged account is refused; with `follow_merge`, its survivor
    is locked and returned instead (lock)."""
    member, plan, _ = lock(member, follow_merge=follow_merge)
    return member, plan


def post_redemption(
    member: Member, plan: Programme, *, points, reason, by, at, log=None
) -> LedgerEntry:
    """The entry of a redemption on a locked member: minus the cost, at once. `log`: the
    tier changes recorded before it (T3), written with it."""
    redemption = movement(None, Kind.REDEMPTION, -points, at=at, reason=reason)
    entry = entry_of(member, redemption, created_by=by)
    post_entries(member, plan, [entry], at=at, by=by, log=log)
    return entry


def post_refund(member: Member, plan: Programme, *, points, reason, by, at) -> LedgerEntry:
    """W4: a cancelled redemption's points come back available at once, not tier-counting."""
    entry = entry_of(
        member, movement(None, Kind.REFUND, points, at=at, reason=reason), created_by=by
    )
    post_entries(member, plan, [entry], at=at, by=by)
    return entry
