"""Every write to the ledger (P1-P8). Nothing else creates a LedgerEntry."""

import functools
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.bulk import (
    CopyBehind,
    bulk_update,
    insert_rows,
    reserve_ids,
    without_cycle_collection,
)
from core.db import fetch_prepared
from core.jobs import id_chunks
from members.models import Member, Notification
from points.models import (
    MANUAL_ADJUSTMENT,
    TIER_UP_BONUS,
    Channel,
    ExpiryPolicy,
    ExpiryRun,
    LedgerEntry,
    PointDefinition,
    Transaction,
)
from points.selectors import (
    Programme,
    balances,
    cutoff_dates,
    cutoff_instant,
    next_cutoff,
    points_at_stake,
    programme,
    stake_cte,
)
from tiers.models import ProgrammeVersion, Tier
from tiers.services import Reason as TierReason
from tiers.services import TierLog, requalify, restore

Kind = LedgerEntry.Kind
REASON_LENGTH = LedgerEntry._meta.get_field("reason").max_length


# Rules as pure functions: the services and the bulk import share them.


def points_per_unit(earn_rate: Decimal, tier_multiplier: Decimal, campaign_multipliers) -> Decimal:
    """P2's points per currency unit: earn rate x tier multiplier x campaign
    multipliers, exact (no rounding before the floor of purchase_points)."""
    rate = _EXACT.multiply(earn_rate, tier_multiplier)
    for multiplier in campaign_multipliers:
        rate = _EXACT.multiply(rate, multiplier)
    return rate


def purchase_points(amount: Decimal, rate: Decimal) -> int:
    """P2: floor(amount x points_per_unit(...)), whole points (int() is the floor:
    neither is ever negative)."""
    return int(_EXACT.multiply(amount, rate))


# Wide enough for any amount times any rates the models allow: products are exact.
_EXACT = Context(prec=200, traps=[Inexact])


def return_points(
    *,
    awarded: int,
    reversed_before: int,
    amount: Decimal,
    returned_before: Decimal,
    purchase_amount: Decimal,
) -> int:
    """P4: points a return takes back, in proportion, never more than were awarded.

    The return that completes the purchase takes back all that is left, so a purchase
    returned in parts ends at zero whatever the rounding of each part.
    """
    left = awarded - reversed_before
    if amount + returned_before >= purchase_amount:
        return left
    share = (Decimal(awarded) * amount / purchase_amount).quantize(1, rounding=ROUND_HALF_UP)
    return min(int(share), left)


class TransactionLimits(NamedTuple):
    """What a purchase, return or action may be, read once per call (or per file)."""

    max_amount: Decimal
    earliest: datetime
    latest: datetime


def transaction_limits(now=None) -> TransactionLimits:
    """At most MAX_TRANSACTION_AMOUNT, dated from the programme's start (PROGRAMME_START,
    midnight in TIME_ZONE) to a day after now: a till's clock may run a little ahead, a
    typo of a year may not."""
    start = datetime.combine(settings.PROGRAMME_START, time.min)
    earliest = timezone.make_aware(start, timezone.get_default_timezone()).astimezone(UTC)
    latest = (now or timezone.now()) + timedelta(days=1)
    return TransactionLimits(settings.MAX_TRANSACTION_AMOUNT, earliest, latest)


_PLAIN_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")  # 120, 120.5, 120.50
_SIGNED_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # negative or too precise: said so
_ZERO = Decimal(0)


def clean_amount(amount, limits: TransactionLimits | None = None) -> Decimal:
    """A money amount, positive, at most MAX_TRANSACTION_AMOUNT. Text is a plain decimal:
    ASCII digits, and a point with one or two decimals; no sign, exponent, separator,
    space, or digits of another script (Python's Decimal() takes all of those). A
    Decimal or int is taken by its value; a float is refused, not rounded. The services
    and the CSV import (which passes the limits it read once for the file) share it."""
    if isinstance(amount, str) and _PLAIN_AMOUNT.fullmatch(amount):
        value = Decimal(amount)
    else:
        value = _amount_value(amount)
    if value <= _ZERO:
        raise ValidationError({"amount": f"The amount must be positive, not {amount}."})
    limit = limits.max_amount if limits else settings.MAX_TRANSACTION_AMOUNT
    if value > limit:
        raise ValidationError(
            {"amount": f"{amount} is more than the {limit:,} allowed in one transaction."}
        )
    return value


def _amount_value(amount) -> Decimal:
    """The value of an amount that is not plain decimal text, or why it is no amount."""
    if isinstance(amount, float):
        raise ValidationError({"amount": "Give the amount as a decimal, not a float."})
    if isinstance(amount, str) and _SIGNED_DECIMAL.fullmatch(amount):
        value = Decimal(amount)
    elif isinstance(amount, Decimal | int) and not isinstance(amount, bool):
        value = Decimal(amount)
    else:
        value = None
    if value is None or not value.is_finite():
        raise ValidationError(
            {
                "amount": f"{amount!r} is not an amount (write digits and at most two "
                "decimals after a point, like 1250.50)."
            }
        )
    if value > 0 and value.as_tuple().exponent < -2:
        raise ValidationError({"amount": f"{amount} has more than two decimals."})
    return value


def check_occurred_at(occurred_at, limits: TransactionLimits | None = None, *, shown="") -> None:
    """The time of a purchase, return or action: aware, and within transaction_limits.
    record_purchase, record_return, award_action and the CSV import all check it here;
    `shown` is the time as the caller wrote it, for the message."""
    _, earliest, latest = limits or transaction_limits()
    try:
        if earliest <= occurred_at <= latest:
            return
    except TypeError:  # naive (or no time at all): it cannot be placed
        raise ValidationError({"occurred_at": "The time needs a time zone."}) from None
    shown = shown or occurred_at.isoformat()
    if occurred_at < earliest:
        start = settings.PROGRAMME_START
        began = f"{start.day} {start:%B %Y}"
        raise ValidationError({"occurred_at": f"{shown} is before the programme began ({began})."})
    raise ValidationError({"occurred_at": f"{shown} is more than a day in the future."})


_CHANNELS = frozenset(Channel.values)


def _check_reference(*, external_id, occurred_at, channel=Channel.API) -> None:
    if not external_id or len(external_id) > 100:
        raise ValidationError({"external_id": "A transaction needs an id of 1 to 100 characters."})
    check_occurred_at(occurred_at)
    if channel not in _CHANNELS:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})


def _multiplier_label(name: str, multiplier: Decimal) -> str:
    return f"{name} x{multiplier.normalize():f}"


# Writing


def _lock(member: Member, external_id: str | None = None, *, for_update: bool = True):
    """Lock the member row (every writer of a member's points takes this lock first,
    but for the unlocked purchase, which reads it with `for_update=False`) and, in the
    same round trip, read the programme's version and whether `external_id` was
    recorded before. Returns (member, programme, recorded_id).

    Written as SQL, prepared, because it runs for every purchase: composing it with
    the ORM, or reading it through `raw()`, cost more than executing it."""
    names, converters = _member_columns()
    sql = _lock_sql(for_update)
    *values, version, recorded_id = fetch_prepared(sql, [external_id, member.pk])
    for i, convert, column in converters:
        values[i] = convert(values[i], column, connection)
    locked = Member.from_db(connection.alias, names, values)
    return locked, programme(version), recorded_id


@functools.cache
def _member_columns():
    """The member's attribute names, and the database's converters of its columns
    (SQLite gives times as text), in the order `_lock_sql` selects them."""
    fields = Member._meta.concrete_fields
    converters = []
    for i, column in enumerate(f.get_col(Member._meta.db_table) for f in fields):
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        ):
            converters.append((i, convert, column))
    return [f.attname for f in fields], converters


@functools.cache
def _lock_sql(for_update: bool) -> str:
    lock = " FOR UPDATE OF m" if for_update and connection.features.has_select_for_update_of else ""
    columns = ", ".join(
        f"m.{connection.ops.quote_name(f.column)}" for f in Member._meta.concrete_fields
    )
    return (
        f"SELECT {columns}, (SELECT token FROM {ProgrammeVersion._meta.db_table} LIMIT 1)"
        f" AS programme_version, (SELECT id FROM {Transaction._meta.db_table}"
        f" WHERE external_id = %s) AS recorded_id"
        f" FROM {Member._meta.db_table} m WHERE m.id = %s{lock}"
    )


@dataclass(slots=True)
class _Movement:
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


def _movement(definition, kind, points: int, *, at, reason: str, accrue_at=None) -> _Movement:
    """An entry counted as its definition says when it is written (none: redeemable,
    not tier-counting), issued at `at` and available at `accrue_at`, by default at once."""
    return _Movement(
        kind,
        points,
        definition.pk if definition else None,
        definition.counts_toward_tier if definition else False,
        definition.redeemable if definition else True,
        at,
        accrue_at or at,
        reason,
    )


def _earned(definition: PointDefinition, points: int, *, at, reason: str) -> _Movement:
    """An earning: issued when it happened, available after the definition's delay (P5)."""
    delay = timedelta(days=definition.accrue_delay_days)
    return _movement(definition, Kind.EARN, points, at=at, reason=reason, accrue_at=at + delay)


def _entry_of(member: Member, movement: _Movement, **link) -> LedgerEntry:
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
        **link,
    )


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


def post_transaction(member: Member, plan: Programme, txn: Transaction, entries, *, at, log=None):
    """Save a new transaction with its entries for a locked member: what `post_entries`
    does, plus the transaction row. On PostgreSQL the transaction, its entries and the
    member's caches go in one statement: one round trip instead of three."""
    log = TierLog() if log is None else log
    entries = apply_entries(member, plan, entries, at=at, log=log, transaction=txn)
    if connection.vendor == "postgresql":
        if not _insert_transaction(member, txn, entries):
            raise RuntimeError(f"Member {member.pk} was not updated while locked.")
    else:
        txn.save()
        LedgerEntry.objects.bulk_create(entries)
        member.save(update_fields=MEMBER_CACHE_FIELDS)
    log.write()
    return entries


def _insert_transaction(member: Member, txn: Transaction, entries, *, unless_changed=None) -> bool:
    """UPDATE the member's caches, INSERT the transaction, INSERT its entries linked to
    the new id: data-modifying CTEs of one statement, built once per shape.

    With `unless_changed` (the caches as read, in MEMBER_CACHE_FIELDS order) the member
    is updated only if its caches still hold those values, and the rows are inserted
    only if it was: a conditional update in place of the member lock. Returns whether
    it wrote."""
    txn_fields, entry_fields, member_fields = _written_fields()
    params = [getattr(member, f.attname) for f in member_fields]
    params.append(member.pk)
    if unless_changed is not None:
        params += unless_changed
    params += [getattr(txn, f.attname) for f in txn_fields]
    for entry in entries:
        params += [getattr(entry, f.attname) for f in entry_fields]
    sql = _insert_transaction_sql(len(entries), unless_changed is not None)
    written = fetch_prepared(sql, params)
    if written is None:
        return False
    txn.pk, entry_ids = written
    txn._state.adding, txn._state.db = False, connection.alias
    for entry, pk in zip(entries, entry_ids, strict=True):
        entry.pk, entry.transaction_id = pk, txn.pk
        entry._state.adding, entry._state.db = False, connection.alias
    return True


@functools.cache
def _written_fields():
    """The columns `_insert_transaction` writes: a transaction's, an entry's other than
    its transaction link (the new id), the member's caches."""
    txn_fields = [f for f in Transaction._meta.concrete_fields if not f.primary_key]
    entry_fields = [
        f
        for f in LedgerEntry._meta.concrete_fields
        if not f.primary_key and f.name != "transaction"
    ]
    member_fields = [Member._meta.get_field(name) for name in MEMBER_CACHE_FIELDS]
    return txn_fields, entry_fields, member_fields


@functools.cache
def _insert_transaction_sql(entry_count: int, conditional: bool) -> str:
    txn_fields, entry_fields, member_fields = _written_fields()
    quote = connection.ops.quote_name

    def columns(fields):
        return ", ".join(quote(f.column) for f in fields)

    def values(fields):  # typed: the rows are selected, not inserted from VALUES
        return ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in fields)

    caches = ", ".join(f"{quote(f.column)} = %s" for f in member_fields)
    unchanged = (
        f" AND ({columns(member_fields)}) IS NOT DISTINCT FROM ({values(member_fields)})"
        if conditional
        else ""
    )
    entry_rows = " UNION ALL ".join(
        [f"SELECT {values(entry_fields)}, txn.id FROM txn"] * entry_count
    )
    entries = (
        f"INSERT INTO {LedgerEntry._meta.db_table} ({columns(entry_fields)}, transaction_id)"
        f" {entry_rows} RETURNING id"
        if entry_count
        else "SELECT NULL::bigint AS id WHERE false"
    )
    return (
        f"WITH member AS (UPDATE {Member._meta.db_table} SET {caches}"
        f" WHERE id = %s{unchanged} RETURNING id),"
        f" txn AS (INSERT INTO {Transaction._meta.db_table} ({columns(txn_fields)})"
        f" SELECT {values(txn_fields)} FROM member RETURNING id),"
        f" entries AS ({entries})"
        f" SELECT id, ARRAY(SELECT id FROM entries ORDER BY id) FROM txn"
    )


def apply_entries(
    member: Member, plan: Programme, entries, *, at, log, reason=None, by=None, **link
):
    """The caches, tier and tier-up bonus that entries give a member, in memory: what
    `post_entries` writes. Returns the entries with the bonus, if any."""
    bonus = _credit(member, plan, entries, at=at, log=log, reason=reason, by=by)
    if bonus:
        entries = [*entries, _entry_of(member, bonus, created_by=by, **link)]
    return entries


def _credit(member: Member, plan: Programme, entries, *, at, log, reason=None, by=None):
    """Count entries (LedgerEntry or _Movement) in the member's caches, in memory, and
    requalify it (T2). Returns the tier-up bonus due, already counted: redeemable and
    not tier-counting, so it can never cause another tier-up."""
    for entry in entries:
        member.points_balance += entry.points if entry.redeemable else 0
        member.lifetime_points += entry.points if entry.counts_toward_tier else 0
    reached: Tier | None = requalify(member, plan.ranking, at=at, log=log, reason=reason, by=by)
    if not (reached and reached.upgrade_bonus_points):
        return None
    member.points_balance += reached.upgrade_bonus_points
    definition = plan.definition(TIER_UP_BONUS)
    return _Movement(
        Kind.BONUS,
        reached.upgrade_bonus_points,
        definition.pk,
        False,
        True,
        at,
        at,
        f"Welcome to {reached.name}",
    )


MEMBER_CACHE_FIELDS = [
    "points_balance",
    "lifetime_points",
    "qualified_tier",
    "effective_tier",
    "best_tier",
    "last_purchase_at",
]


def _reversal(bought: "_Purchase", points: int, *, amount, at) -> _Movement:
    """The entry of a return (P4): minus `points`, counted as the earning was counted,
    whatever the definition says today. Points still pending on the purchase are taken
    back when they accrue."""
    earn = bought.earn
    return _Movement(
        Kind.RETURN,
        -points,
        earn.definition_id,
        earn.counts_toward_tier,
        earn.redeemable,
        at,
        max(at, earn.accrue_at),
        f"Return of {amount} of {bought.external_id}",
    )


def _recorded_before(recorded_id, **content) -> Transaction | None:
    """P8: the transaction already recorded under this id, marked skipped; an error
    when it was recorded with other content."""
    if recorded_id is None:
        return None
    existing = Transaction.objects.get(pk=recorded_id)
    differs = [field for field, value in content.items() if getattr(existing, field) != value]
    if differs:
        names = ", ".join(f.removesuffix("_id") for f in differs)
        raise ValidationError(
            {
                "external_id": f"Transaction {existing.external_id} was already recorded "
                f"with another {names}."
            }
        )
    existing.skipped = True
    return existing


def _idempotent(service):
    """When two writers race on one external_id, the unique constraint decides: the
    loser reports the winner's row as skipped, or an error if its content differs."""

    @functools.wraps(service)
    def wrapper(**kwargs):
        try:
            return service(**kwargs)
        except IntegrityError:
            if not Transaction.objects.filter(external_id=kwargs.get("external_id")).exists():
                raise
            return service(**kwargs)

    return wrapper


@_idempotent
def record_purchase(
    *, member, amount, occurred_at, external_id, channel=Channel.API, store=""
) -> Transaction:
    """A purchase earns at the effective tier's multiplier and the running campaigns (P2, P3)."""
    amount = clean_amount(amount)
    _check_reference(external_id=external_id, occurred_at=occurred_at, channel=channel)
    fields = dict(
        external_id=external_id,
        kind=Transaction.Kind.PURCHASE,
        amount=amount,
        occurred_at=occurred_at,
        channel=channel,
        store=store,
    )
    if _writes_unlocked() and (txn := _record_purchase_unlocked(member, fields)):
        return txn
    with transaction.atomic():
        member, plan, recorded_id = _lock(member, external_id)
        if existing := _recorded_before(recorded_id, member_id=member.pk, **fields):
            return existing
        log = TierLog()
        txn, entries = _purchase_transaction(member, plan, log, fields)
        post_transaction(member, plan, txn, entries, at=occurred_at, log=log)
    return txn


def _purchase_transaction(member, plan: Programme, log: TierLog, fields):
    earned = _purchase(
        member,
        plan,
        log,
        amount=fields["amount"],
        at=fields["occurred_at"],
        channel=fields["channel"],
    )
    txn = Transaction(member=member, **fields)
    return txn, [_entry_of(member, earned, transaction=txn)] if earned else []


def _writes_unlocked() -> bool:
    """Outside a transaction on PostgreSQL, where one statement is its own transaction."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _record_purchase_unlocked(member, fields) -> Transaction | None:
    """The common purchase in two statements and no lock: read the member, apply the
    rules, then write everything in one statement that updates the member only if its
    caches are still those read. Any writer in between changes them (a purchase
    depends on nothing else), and then nothing is written.

    None when it did not write: another writer came between, the id was recorded
    before (skipped or refused), or the purchase changes a tier, whose history rows
    must commit with it. record_purchase then records it under the member lock."""
    member, plan, recorded_id = _lock(member, fields["external_id"], for_update=False)
    if recorded_id is not None:
        return None
    *_, cache_fields = _written_fields()
    read = [getattr(member, f.attname) for f in cache_fields]
    log = TierLog()
    txn, entries = _purchase_transaction(member, plan, log, fields)
    entries = apply_entries(
        member, plan, entries, at=fields["occurred_at"], log=log, transaction=txn
    )
    if log or not _insert_transaction(member, txn, entries, unless_changed=read):
        return None
    return txn


@_idempotent
def record_return(
    *, member, amount, occurred_at, external_id, original_external_id, channel=Channel.API
) -> Transaction:
    """A return takes back the points its purchase was awarded, in proportion (P4)."""
    amount = clean_amount(amount)
    _check_reference(external_id=external_id, occurred_at=occurred_at, channel=channel)
    with transaction.atomic():
        member, plan, recorded_id = _lock(member, external_id)
        bought = _recorded_purchases({original_external_id}).get(original_external_id)
        fields = dict(
            external_id=external_id,
            kind=Transaction.Kind.RETURN,
            amount=amount,
            occurred_at=occurred_at,
            channel=channel,
        )
        if bought and bought.member_id == member.pk:
            content = dict(member_id=member.pk, original_id=bought.pk, **fields)
            if existing := _recorded_before(recorded_id, **content):
                return existing
        try:
            reversal = _return(member, bought, original_external_id, amount=amount, at=occurred_at)
        except _Refused as refused:
            column, reason = refused.args
            raise ValidationError({column: f"Cannot return {external_id}: {reason}."}) from None
        txn = Transaction(member=member, original_id=bought.pk, **fields)
        entries = [_entry_of(member, reversal, transaction=txn)] if reversal else []
        post_transaction(member, plan, txn, entries, at=occurred_at)
    return txn


@_idempotent
def award_action(*, member, definition, occurred_at, external_id) -> Transaction:
    """An action (a referral, a review) earns the definition's fixed points."""
    _check_reference(external_id=external_id, occurred_at=occurred_at)
    if definition.kind != PointDefinition.Kind.ACTION or not definition.is_active:
        raise ValidationError({"definition": f"{definition} is not an active action."})
    fields = dict(
        external_id=external_id,
        kind=Transaction.Kind.ACTION,
        occurred_at=occurred_at,
        definition=definition,
        channel=Channel.API,
    )
    with transaction.atomic():
        member, plan, recorded_id = _lock(member, external_id)
        if existing := _recorded_before(recorded_id, member_id=member.pk, **fields):
            return existing
        txn = Transaction(member=member, **fields)
        earned = _earned(definition, definition.points, at=occurred_at, reason=definition.name)
        entries = [_entry_of(member, earned, transaction=txn)] if earned.points else []
        post_transaction(member, plan, txn, entries, at=occurred_at)
    return txn


def adjust_points(*, member, points, reason, by, definition=None, now=None) -> LedgerEntry:
    """A staff user adds or removes points by hand (P6), available at once."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ValidationError({"points": "Give a whole number of points other than zero."})
    if abs(points) > settings.MAX_ADJUSTMENT_POINTS:
        raise ValidationError(
            {
                "points": f"At most {settings.MAX_ADJUSTMENT_POINTS:,} points can be added "
                f"or removed in one adjustment, not {points:,}."
            }
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the points are adjusted."})
    if len(reason) > REASON_LENGTH:
        raise ValidationError(
            {"reason": f"Keep the reason to {REASON_LENGTH} characters (it has {len(reason)})."}
        )
    if by is None:
        raise ValidationError("A manual adjustment must name the staff user who makes it.")
    with transaction.atomic():
        member, plan, _ = _lock(member)
        # The clock is read once the lock is held: a writer that waited for the lock
        # must see the entries of the one before it as already issued.
        now = now or timezone.now()
        definition = definition or plan.definition(MANUAL_ADJUSTMENT)
        if points < 0 and definition.redeemable:
            available = balances(member, now=now).available
            if available + points < 0:
                raise ValidationError(
                    {
                        "points": f"Cannot remove {-points:,} points: "
                        f"{member.external_id} has only {available:,} available."
                    }
                )
        if points < 0 and definition.counts_toward_tier and member.lifetime_points + points < 0:
            raise ValidationError(
                {
                    "points": f"Cannot remove {-points:,} tier points: "
                    f"{member.external_id} has only {member.lifetime_points:,}."
                }
            )
        adjustment = _movement(definition, Kind.ADJUSTMENT, points, at=now, reason=reason)
        entry = _entry_of(member, adjustment, created_by=by)
        post_entries(member, plan, [entry], at=now, reason=TierReason.MANUAL, by=by)
    return entry


# Expiry (E1-E4)


def expire_points(*, now=None) -> int:
    """E3: process every passed cutoff not yet processed, oldest first, in this process.
    Returns the number of expiry entries written. Safe to run twice or concurrently: the
    unique constraint on (member, cutoff) decides, and caches move once per member and
    cutoff. The periodic task shares the same chunks out to the workers instead."""
    now = now or timezone.now()
    written = 0
    for cutoff in pending_cutoffs(now):
        for first_id, last_id in id_chunks(Member):
            written += expire_chunk(cutoff=cutoff, first_id=first_id, last_id=last_id)
        finish_cutoff(cutoff)
    return written


def pending_cutoffs(now) -> list[date]:
    """The passed cutoffs since `starts_on` whose expiry is not complete, oldest first."""
    policy = ExpiryPolicy.current()
    if policy.cycle == ExpiryPolicy.Cycle.NEVER or policy.starts_on is None:
        return []
    passed = [
        day
        for day in cutoff_dates(policy.cycle, policy.starts_on, timezone.localdate(now))
        if cutoff_instant(day) <= now
    ]
    done = set(ExpiryRun.objects.filter(cutoff__in=passed).values_list("cutoff", flat=True))
    return [day for day in passed if day not in done]


@transaction.atomic
def expire_chunk(*, cutoff: date, first_id: int, last_id: int) -> int:
    """E2 for the members with ids in [first_id, last_id]: two statements."""
    end = cutoff_instant(cutoff)
    stake = points_at_stake(cutoff, first_id=first_id, last_id=last_id)
    with_stake, stake_params = stake_cte(stake)
    ledger = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ledger} (member_id, kind, points, counts_toward_tier, redeemable,
                                  issued_at, accrue_at, cutoff, reason, created_at)
            {with_stake}
            SELECT s.member_id, %s, -s.at_stake, FALSE, TRUE, %s, %s, %s, %s, %s
            FROM stake s
            WHERE TRUE  -- SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
            ON CONFLICT DO NOTHING
            """,
            [
                *stake_params,
                Kind.EXPIRY,
                *[connection.ops.adapt_datetimefield_value(t) for t in (end, end)],
                connection.ops.adapt_datefield_value(cutoff),
                f"Points expired at the end of {cutoff:%d %B %Y}",
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        written = cursor.rowcount
    # The cache moves once per member and cutoff, whoever wrote the entry.
    member = Member._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {member} SET points_balance = {member}.points_balance + e.points,
                                expired_through = %s
            FROM {ledger} e
            WHERE e.member_id = {member}.id AND e.kind = %s AND e.cutoff = %s
              AND e.member_id BETWEEN %s AND %s
              AND ({member}.expired_through IS NULL OR {member}.expired_through < %s)
            """,
            [
                connection.ops.adapt_datefield_value(cutoff),
                Kind.EXPIRY,
                connection.ops.adapt_datefield_value(cutoff),
                first_id,
                last_id,
                connection.ops.adapt_datefield_value(cutoff),
            ],
        )
    return written


def finish_cutoff(cutoff: date) -> ExpiryRun:
    """Record a cutoff as complete, with its totals, once every chunk of it is written."""
    totals = LedgerEntry.objects.filter(kind=Kind.EXPIRY, cutoff=cutoff).aggregate(
        members=Count("pk"), points=Sum("points")
    )
    run, _ = ExpiryRun.objects.get_or_create(
        cutoff=cutoff,
        defaults={"members": totals["members"], "points": -(totals["points"] or 0)},
    )
    return run


def send_expiry_reminders(*, now=None) -> int:
    """E4: `reminder_days` before the next cutoff, queue one message per member with
    points at stake; once per member and cutoff (a unique constraint decides)."""
    now = now or timezone.now()
    policy = ExpiryPolicy.current()
    today = timezone.localdate(now)
    cutoff = next_cutoff(policy, today)
    if cutoff is None or (cutoff - today).days > policy.reminder_days:
        return 0
    with_stake, stake_params = stake_cte(points_at_stake(cutoff))
    outbox = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {outbox} (member_id, kind, context, cutoff, points, created_at)
            {with_stake}
            SELECT s.member_id, %s, '{{}}', %s, s.at_stake, %s FROM stake s
            WHERE TRUE
            ON CONFLICT DO NOTHING
            """,
            [
                *stake_params,
                Notification.Kind.EXPIRY_REMINDER,
                connection.ops.adapt_datefield_value(cutoff),
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        return cursor.rowcount


# Spending, for rewards.services (W3, W4)


def lock_member(member: Member) -> tuple[Member, Programme]:
    """Lock a member before checking and spending its points (the same lock as every
    other writer takes)."""
    member, plan, _ = _lock(member)
    return member, plan


def post_redemption(member: Member, plan: Programme, *, points, reason, by, at) -> LedgerEntry:
    """The entry of a redemption on a locked member: minus the cost, at once."""
    redemption = _movement(None, Kind.REDEMPTION, -points, at=at, reason=reason)
    entry = _entry_of(member, redemption, created_by=by)
    post_entries(member, plan, [entry], at=at, by=by)
    return entry


def post_refund(member: Member, plan: Programme, *, points, reason, by, at) -> LedgerEntry:
    """W4: a cancelled redemption's points come back available at once, not tier-counting."""
    entry = _entry_of(
        member, _movement(None, Kind.REFUND, points, at=at, reason=reason), created_by=by
    )
    post_entries(member, plan, [entry], at=at, by=by)
    return entry


# Bulk import of transactions (the CSV contract)


PREVIEW_ROWS = 100  # rows shown in the admin's preview; the summary counts them all
IMPORT_CHUNK = 25_000  # rows computed and written at a time
IMPORT_PURCHASES_KEPT = 50_000  # the purchases last used, kept for the file's returns
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass
class ImportReport:
    rows: int = 0
    new: int = 0
    skipped: int = 0
    points: int = 0
    tier_changes: int = 0
    errors: list = field(default_factory=list)
    skipped_lines: set = field(default_factory=set)  # among the first PREVIEW_ROWS rows

    def summary(self) -> str:
        return f"new={self.new} skipped={self.skipped} errors={len(self.errors)}"


@dataclass(slots=True)
class _Purchase:
    """What a return needs of its purchase: recorded before, or earlier in the same
    import."""

    pk: int
    external_id: str
    member_id: int
    amount: Decimal
    occurred_at: datetime
    earn: _Movement | None
    returned: Decimal = Decimal(0)
    reversed: int = 0


class ImportRow(NamedTuple):
    """A checked CSV row (points.resources parses them). Back from the staging table it
    also carries the id its external_id was recorded under before this import, if any.
    A named tuple: a million of them are made from a million-row file."""

    line: int
    external_id: str
    member: str
    kind: str
    amount: Decimal
    occurred_at: datetime
    channel: str
    store: str
    original_external_id: str
    recorded_id: int | None = None


_STAGED = "import_rows"
_STAGED_COLUMNS = {
    "line": "integer",
    "external_id": "text",
    "member": "text",
    "kind": "text",
    "amount": "text",  # the file's own digits: messages quote them as written
    "occurred_at": "bigint",  # microseconds since 1970 UTC: sorts as time does
    "channel": "text",
    "store": "text",
    "original_external_id": "text",
    "recorded_id": "bigint",
}


def import_transactions(rows, *, errors=(), dry_run=False) -> ImportReport:
    """Apply checked CSV rows (points.resources) in `occurred_at` order through the
    rules of record_purchase and record_return, all or nothing, in one database
    transaction.

    The rows are staged in a temporary table as they are read (`rows` may be an
    iterator, and `errors` may fill while it is read); the database finds duplicates
    and rows recorded before, and gives the rows back in time order a chunk at a time,
    each written (bulk.CopyBehind) while the next is computed. So memory holds two
    chunks, the members of the file and the purchases last used, whatever the file's
    size. The rules give movements
    (_Movement), written as plain rows with COPY: no model object per row. Any bad row,
    or `dry_run`, rolls everything back. Rows already imported with the same content
    are skipped (P8). The members of the file are locked first, so an import running
    at the same time waits, then skips what this one wrote; the unique external_id
    stays the final judge."""
    from points.resources import RowError

    report = ImportReport()
    bad = report.errors.append
    with transaction.atomic(), CopyBehind() as writer, without_cycle_collection():
        _stage(rows)
        report.errors += errors  # complete once the rows are read
        duplicates = set()
        for line, first_line in _staged_duplicates():
            bad(RowError(line, "external_id", f"duplicate of line {first_line}"))
            duplicates.add(line)
        members = {
            m.external_id: m
            for m in Member.objects.select_for_update(of=("self",))
            .filter(external_id__in=RawSQL(f"SELECT member FROM {_STAGED}", ()))
            .order_by("pk")
        }
        _mark_recorded()  # after the locks: sees what an import before this one wrote
        before = {m.pk: m.qualified_tier_id for m in members.values()}
        plan = programme()
        log = TierLog()
        now = timezone.now()
        # The purchases returns may name, by external id: the latest of the file and
        # those read back for a chunk (recorded before, or by an earlier chunk).
        purchases = OrderedDict()
        written, next_analyze = 0, max(_planned_rows(Transaction), IMPORT_CHUNK)
        computed, analyze = [], False  # the tables of the last chunk, not yet written
        for chunk in _staged_chunks():
            report.rows += len(chunk)
            recorded = Transaction.objects.select_related("original").in_bulk(
                [row.recorded_id for row in chunk if row.recorded_id]
            )
            returned = {row.original_external_id for row in chunk if row.kind == "return"}
            purchases.update(_recorded_purchases(returned - purchases.keys()))
            ids = iter(reserve_ids(Transaction, len(chunk)))
            # The previous chunk is written while this one is computed: the purchases
            # it made or returned are still kept (at least a chunk's worth are), so
            # none is read back before its rows are written. Written even after an
            # error, to be rolled back: later chunks find their returns' purchases in
            # the database once they are no longer kept.
            writer.insert(*computed, analyze=analyze)
            txns, entries = [], []
            for row in chunk:
                member = members.get(row.member)
                if member is None:
                    bad(
                        RowError(row.line, "member", f"no member with customer code {row.member!r}")
                    )
                elif row.recorded_id:
                    if _same_content(recorded[row.recorded_id], row, member):
                        report.skipped += 1
                        if row.line <= PREVIEW_ROWS + 1:
                            report.skipped_lines.add(row.line)
                    else:
                        bad(
                            RowError(
                                row.line,
                                "external_id",
                                f"{row.external_id} was already imported with other content",
                            )
                        )
                elif row.line not in duplicates:
                    at, amount, pk, member_id = row.occurred_at, row.amount, next(ids), member.id
                    if row.kind == Transaction.Kind.PURCHASE:
                        earned = _purchase(
                            member, plan, log, amount=amount, at=at, channel=row.channel
                        )
                        purchases[row.external_id] = _Purchase(
                            pk, row.external_id, member_id, amount, at, earned
                        )
                        original_id = None
                    else:
                        bought = purchases.get(row.original_external_id)
                        if bought:
                            purchases.move_to_end(row.original_external_id)
                        try:
                            earned = _return(
                                member, bought, row.original_external_id, amount=amount, at=at
                            )
                        except _Refused as refused:
                            bad(RowError(row.line, *refused.args))
                            continue
                        original_id = bought.pk
                    txns.append(_transaction_row(pk, row, member_id, original_id, now))
                    moves = [earned] if earned else []
                    if bonus := _credit(member, plan, moves, at=at, log=log):
                        moves.append(bonus)
                    entries += [_entry_row(member_id, move, pk, now) for move in moves]
                    report.points += earned.points if earned else 0
                    report.new += 1
            writer.wait()
            computed = _chunk_tables(txns, entries) + log.tables()
            written += len(txns)
            # The planner's statistics are refreshed, this import's rows included,
            # each time it has written as many rows again as the table was believed to
            # hold: a few times at most, never on a large table. Autovacuum cannot see
            # rows not yet committed: after a first import of a million rows into a new
            # database the planner would still believe the ledger nearly empty, and
            # scan it whole for each chunk's look-ups.
            if analyze := written >= next_analyze:
                next_analyze *= 2
            while len(purchases) > max(IMPORT_PURCHASES_KEPT, IMPORT_CHUNK):
                purchases.popitem(last=False)  # the least recently used first
        writer.insert(*computed)
        writer.wait()
        report.rows += len(errors)
        report.tier_changes = sum(before[m.pk] != m.qualified_tier_id for m in members.values())
        bulk_update(Member, list(members.values()), MEMBER_CACHE_FIELDS)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {_STAGED}")
        if report.errors:
            report.new = report.points = report.tier_changes = 0
            report.errors.sort(key=lambda e: (e.line, e.column))
        if report.errors or dry_run:
            transaction.set_rollback(True)
    return report


def _stage(rows) -> None:
    """Copy the rows into a temporary table as they are read."""
    columns = ", ".join(f"{name} {type_}" for name, type_ in _STAGED_COLUMNS.items())
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {_STAGED} ({columns})")
    insert_rows(
        _STAGED,
        list(_STAGED_COLUMNS)[:-1],
        (
            (
                row.line,
                row.external_id,
                row.member,
                row.kind,
                str(row.amount),
                (row.occurred_at - _EPOCH) // _MICROSECOND,
                row.channel,
                row.store,
                row.original_external_id,
            )
            for row in rows
        ),
    )


def _staged_duplicates():
    """(line, first line) of every row whose external_id an earlier line of the file has."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.line, f.first_line FROM {_STAGED} s JOIN"
            f" (SELECT external_id, MIN(line) AS first_line FROM {_STAGED}"
            f" GROUP BY external_id HAVING COUNT(*) > 1) f ON f.external_id = s.external_id"
            f" WHERE s.line <> f.first_line"
        )
        return cursor.fetchall()


def _mark_recorded() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_STAGED} SET recorded_id = t.id FROM {Transaction._meta.db_table} t"
            f" WHERE t.external_id = {_STAGED}.external_id"
        )


def _staged_chunks():
    """The staged rows in `occurred_at` order (the file's order for equal times), a
    chunk at a time, from a server-side cursor where the database has them."""
    names = ", ".join(_STAGED_COLUMNS)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {_STAGED} ORDER BY occurred_at, line")
        while chunk := cursor.fetchmany(IMPORT_CHUNK):
            yield [
                ImportRow(*row[:4], Decimal(row[4]), _EPOCH + row[5] * _MICROSECOND, *row[6:])
                for row in chunk
            ]


# The rows the import writes: their columns, and the functions that build them in
# that order. The columns left out are NULL: a transaction's definition (actions are
# not imported), an entry's staff user and expiry cutoff.
_TRANSACTION_COLUMNS = [
    "id",
    "external_id",
    "member_id",
    "kind",
    "amount",
    "occurred_at",
    "channel",
    "store",
    "original_id",
    "created_at",
]
_ENTRY_COLUMNS = [
    "transaction_id",
    "member_id",
    "definition_id",
    "kind",
    "points",
    "counts_toward_tier",
    "redeemable",
    "issued_at",
    "accrue_at",
    "reason",
    "created_at",
]


def _transaction_row(pk: int, row: ImportRow, member_id: int, original_id, now) -> tuple:
    return (
        pk,
        row.external_id,
        member_id,
        row.kind,
        row.amount,
        row.occurred_at,
        row.channel,
        row.store,
        original_id,
        now,
    )


def _entry_row(member_id: int, move: _Movement, transaction_id: int, now) -> tuple:
    return (
        transaction_id,
        member_id,
        move.definition_id,
        move.kind,
        move.points,
        move.counts_toward_tier,
        move.redeemable,
        move.issued_at,
        move.accrue_at,
        move.reason,
        now,
    )


def _chunk_tables(txns, entries) -> list:
    return [
        (Transaction, _TRANSACTION_COLUMNS, txns),
        (LedgerEntry, _ENTRY_COLUMNS, entries),
    ]


def _planned_rows(model) -> int:
    """How many rows the planner believes a table has (PostgreSQL; 0 elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table]
        )
        return max(int(cursor.fetchone()[0]), 0)


def _batches(values, size=5000):
    """Look-ups by lists of keys in batches: SQLite takes a limited number of parameters."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _same_content(txn: Transaction, row, member: Member) -> bool:
    original = txn.original.external_id if txn.original else ""
    return (
        txn.member_id,
        txn.kind,
        txn.amount,
        txn.occurred_at,
        txn.channel,
        txn.store,
        original,
    ) == (
        member.pk,
        row.kind,
        row.amount,
        row.occurred_at,
        row.channel,
        row.store,
        row.original_external_id,
    )


def _recorded_purchases(names) -> dict:
    """The purchases with these external ids already in the database, with what was
    returned and reversed of them so far."""
    purchases = {}
    for batch in _batches(names):
        found = {
            pk: _Purchase(pk, external_id, member_id, amount, at, None)
            for pk, external_id, member_id, amount, at in Transaction.objects.filter(
                external_id__in=batch, kind="purchase"
            ).values_list("pk", "external_id", "member_id", "amount", "occurred_at")
        }
        earns = LedgerEntry.objects.filter(transaction__in=found, kind=Kind.EARN).values_list(
            "transaction_id",
            "points",
            "definition_id",
            "counts_toward_tier",
            "redeemable",
            "issued_at",
            "accrue_at",
        )
        for pk, points, definition_id, counts, redeemable, issued_at, accrue_at in earns:
            found[pk].earn = _Movement(
                Kind.EARN, points, definition_id, counts, redeemable, issued_at, accrue_at
            )
        # Returns first, then their entries: each step an index look-up by id.
        returns = {}
        for pk, original_id, amount in Transaction.objects.filter(original__in=found).values_list(
            "pk", "original_id", "amount"
        ):
            found[original_id].returned += amount
            returns[pk] = found[original_id]
        for txn_id, points in LedgerEntry.objects.filter(
            transaction__in=returns, kind=Kind.RETURN
        ).values_list("transaction_id", "points"):
            returns[txn_id].reversed -= points
        purchases.update((p.external_id, p) for p in found.values())
    return purchases


def _purchase(member, plan: Programme, log: TierLog, *, amount, at, channel) -> _Movement | None:
    """The rules of a purchase on a locked member, in memory: restoration first (D3),
    then floor(amount x earn rate x effective tier multiplier x campaigns) (P2, P3).
    Returns its earning, if it earns any points; record_purchase and the import both
    use it."""
    restore(member, plan.ranking, at=at, log=log)
    tier = plan.ranking.by_pk[member.effective_tier_id]
    campaigns = plan.campaigns_for(at=at, tier_id=tier.id, channel=channel)
    rate, reason = _earning(plan, tier, campaigns)
    points = purchase_points(amount, rate)
    if member.last_purchase_at is None or at > member.last_purchase_at:
        member.last_purchase_at = at
    if not points:
        return None
    return _earned(plan.purchase_definition, points, at=at, reason=reason)


def _earning(plan: Programme, tier: Tier, campaigns) -> tuple[Decimal, str]:
    """The rate of a purchase at a tier during campaigns, and the reason its entry
    gives: worked out once per programme, tier and campaigns, not per purchase."""
    key = (tier.id, *(campaign.id for campaign in campaigns))
    if key not in plan.earnings:
        rate = points_per_unit(
            plan.purchase_definition.earn_rate,
            tier.multiplier,
            [campaign.multiplier for campaign in campaigns],
        )
        labels = [_multiplier_label(tier.name, tier.multiplier)]
        labels += [_multiplier_label(c.name, c.multiplier) for c in campaigns]
        plan.earnings[key] = rate, ", ".join(labels)
    return plan.earnings[key]


class _Refused(Exception):
    """A transaction that breaks a rule: (column, reason)."""


def _return(
    member, bought: _Purchase | None, original_external_id: str, *, amount, at
) -> _Movement | None:
    """The rules of a return (P4) on a locked member, in memory: it names a purchase
    of the member, does not come before it, and does not return more than is left.
    Returns its reversal, if it takes back any points, and counts the return on
    `bought`; record_return and the import both use it."""
    if bought is None or bought.member_id != member.id:
        raise _Refused(
            "original_external_id",
            f"{member.external_id} has no purchase {original_external_id!r}",
        )
    if at < bought.occurred_at:
        raise _Refused("occurred_at", f"it comes before its purchase {original_external_id}")
    left = bought.amount - bought.returned
    if amount > left:
        raise _Refused("amount", f"{amount} is more than the {left} left to return")
    reversal = None
    if bought.earn is not None:
        points = return_points(
            awarded=bought.earn.points,
            reversed_before=bought.reversed,
            amount=amount,
            returned_before=bought.returned,
            purchase_amount=bought.amount,
        )
        if points:
            reversal = _reversal(bought, points, amount=amount, at=at)
        bought.reversed += points
    bought.returned += amount
    return reversal
