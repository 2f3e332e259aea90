"""The CSV import of transactions (the contract in DESIGN.md): checked rows
(points.resources) applied in time order through the rules of purchases and returns,
all or nothing. How it stays fast (staging, COPY behind computation, the collector
off) is in points.services.sql and core.bulk; the rules are those of earning.py and
returns.py."""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import events, figures
from core.bulk import CopyBehind, bulk_update, reserve_ids, without_cycle_collection
from core.models import WebhookDelivery
from members.models import Member
from members.selectors import owner, owner_unless_erased
from points.csv_files import stop_reading
from points.csv_rows import ImportRow, RowError, bad_rows, ids_of_bad_rows, summed_up
from points.models import AwardedOn, LedgerEntry, Transaction
from points.selectors import programme
from points.services import sql
from points.services.earning import purchase_earning
from points.services.late_returns import Expired
from points.services.posting import (
    MEMBER_CACHE_FIELDS,
    MOVEMENT_COLUMNS,
    Movement,
    credit,
    distinct_members,
    duplicate_lines,
    lock_members_written_for,
    movement_values,
    no_member,
    same_owner,
    unknown_members_of_bad_rows,
)
from points.services.referrals import (
    pays,
    programme_award,
    referral_due,
    referral_key,
    referral_movement,
    referrers_of,
)
from points.services.returns import (
    Purchase,
    Refused,
    before_its_purchase,
    recorded_purchases,
    return_reversal,
)
from tiers.services import TierLog

PREVIEW_ROWS = 100  # rows shown in the admin's preview; the summary counts them all
IMPORT_CHUNK = 25_000  # rows computed and written at a time
IMPORT_PURCHASES_KEPT = 50_000  # the purchases last used, kept for the file's returns


@dataclass
class ImportReport:
    rows: int = 0
    new: int = 0
    skipped: int = 0
    points: int = 0  # net: earned minus taken back (point grants: granted)
    taken_back: int = 0  # by the file's returns (grants: removed), a positive number
    given: int = 0  # beside the rows: tier-up bonuses, referral (and welcome) points
    given_back: int = 0  # by expiry entries, to returns dated before them (late_returns)
    tier_changes: int = 0
    members: int = 0  # of the file
    errors: list = field(default_factory=list)
    skipped_lines: set = field(default_factory=set)  # among the first PREVIEW_ROWS rows

    # What a file with a bad row did not do (end_import).
    WRITTEN: ClassVar = ("new", "points", "taken_back", "given", "given_back", "tier_changes")

    def summary(self) -> str:
        return f"new={self.new} skipped={self.skipped} errors={summed_up(self.errors)}"

    @property
    def earned(self) -> int:
        return self.points + self.taken_back

    @property
    def bad_rows(self) -> int:
        """Rows with errors, as the list of imports counts them (not messages)."""
        return bad_rows(self.errors)

    @property
    def header_wrong(self) -> bool:
        return any(getattr(error, "header", False) for error in self.errors)

    def points_moved(self, *, dry_run: bool) -> str:
        """Points earned, taken back and given beside the rows, each apart: a file of
        returns takes points back, it does not award a negative number of them."""
        earn, take, give, back = (
            ("would earn", "would take back", "would give", "would give back")
            if dry_run
            else ("earned", "took back", "gave", "gave back")
        )
        moved = (
            f"purchases {earn} {self.earned:,} points, returns {take} {self.taken_back:,}, "
            f"tier-up bonuses and referrals {give} {self.given:,}"
        )
        if self.given_back:  # rare: returns dated before a cutoff that expired their points
            moved += f", expiry {back} {self.given_back:,} to returns dated before it"
        return moved


def imported_before(report, row, same: bool, bad) -> None:
    """P8 for a row whose external_id was recorded before: the same content is skipped
    (and named in the preview), other content is an error."""
    if same:
        report.skipped += 1
        if row.line <= PREVIEW_ROWS + 1:
            report.skipped_lines.add(row.line)
    else:
        message = f"{row.external_id} was already imported with other content"
        bad(RowError(row.line, "external_id", message))


def tiers_held(members) -> dict[int, tuple[int, int]]:
    """Each member's qualified and effective tier, before a file moves them."""
    return {m.pk: (m.qualified_tier_id, m.effective_tier_id) for m in members}


def members_moved(before: dict, members) -> int:
    """Members whose qualified or effective tier the file changed: a purchase restoring
    a degraded member (D3) changes tier as a threshold crossed does."""
    return sum(before[m.pk] != (m.qualified_tier_id, m.effective_tier_id) for m in members)


def end_import(report, *, dry_run: bool) -> None:
    """The end of an import's transaction, all or nothing: with any bad row nothing is
    written or counted as written, and the errors are in file order; a dry run is
    undone too; what was written makes the dashboard's figures stale. A file of a
    header alone is an error, not an import of nothing to confirm."""
    if not report.rows and not report.errors:
        no_rows = "the file has no rows below its header"
        report.errors.append(RowError(2, "file", no_rows, header=True))  # no row is wrong
    if report.errors:
        for name in report.WRITTEN:
            setattr(report, name, 0)
        report.errors.sort(key=lambda e: (e.line, e.column))
    if report.errors or dry_run:
        transaction.set_rollback(True)
    elif any(getattr(report, name) for name in report.WRITTEN):
        figures.stale()


def import_transactions(
    rows, *, errors=(), dry_run=False, batch=None, on_chunk=None, now=None
) -> ImportReport:
    """Apply checked CSV rows (points.resources) in `occurred_at` order through the
    rules of record_purchase and record_return, all or nothing, in one database
    transaction.

    The rows are staged in a temporary table as they are read (`rows` may be an
    iterator, and `errors` may fill while it is read); the database finds duplicates
    and rows recorded before, and gives the rows back in time order a chunk at a time,
    each written (core.bulk.CopyBehind) while the next is computed. So memory holds two
    chunks, the members of the file and the purchases last used, whatever the file's
    size. The rules give movements (Movement), written as plain rows with COPY: no
    model object per row. Any bad row, or `dry_run`, rolls everything back. Rows
    already imported with the same content are skipped (P8). The members of the file
    are locked first, so an import running at the same time waits, then skips what
    this one wrote; the unique external_id stays the final judge.

    `batch`: the CX Manager's import (core.ImportBatch) its rows are written under;
    `on_chunk(done, total)` hears how many staged rows are computed; `now`: when the
    file is imported, by default the current time (an old purchase restores only what
    its date leaves, D3)."""
    report = ImportReport()
    bad = report.errors.append
    with transaction.atomic(), CopyBehind() as writer, without_cycle_collection():
        sql.stage_rows(rows)
        report.errors += errors  # complete once the rows are read
        report.errors += unknown_members_of_bad_rows(errors)
        duplicates = duplicate_lines(sql.staged_duplicates, report)
        # The ids of the file's wrong rows: a return naming one is not said to have no
        # purchase (its purchase's line is listed; once corrected, the return is checked).
        wrong = {external_id for _, external_id in ids_of_bad_rows(errors)}
        # With the referrers the file's first purchases may pay: all in id order.
        referring = programme_award(programme(), AwardedOn.REFERRAL) is not None
        also = referrers_of(sql.staged_members(recorded=False)) if referring else None
        held, members = lock_members_written_for(sql, also=also)
        locked = distinct_members(held)
        plan = programme()  # as the locks leave it
        referrers = lock_referrers(locked, plan)
        locked = distinct_members({m.pk: m for m in [*locked, *referrers.values()]})
        before = tiers_held(locked)
        # The file's members: the referrers it pays are counted in the points it gives.
        report.members, staged = len(distinct_members(members)), sql.staged_count()
        batch_id = batch.pk if batch else None
        log = TierLog()
        now = now or timezone.now()
        # The purchases returns may name, by external id: the latest of the file and
        # those read back for a chunk (recorded before, or by an earlier chunk).
        purchases = OrderedDict()
        expired = Expired()  # what cutoffs took of members whose returns are dated before
        # A dry run writes nothing (its rows would only be rolled back, leaving the
        # tables that much to vacuum before the real run): the file's purchases that its
        # returns name are kept aside when they leave `purchases`, not read back.
        named, aside = (sql.staged_originals() if dry_run else set()), {}
        written, next_analyze = 0, max(sql.planned_rows(Transaction), IMPORT_CHUNK)
        computed, analyze = [], False  # the tables of the last chunk, not yet written
        for chunk in sql.staged_chunks(IMPORT_CHUNK):
            if stop_reading(report.errors, chunk[0].line):
                break
            report.rows += len(chunk)
            recorded = (
                Transaction.objects.select_related("original")
                .annotate(owner_id=owner_unless_erased("member"))
                .in_bulk([row.recorded_id for row in chunk if row.recorded_id])
            )
            returned = {row.original_external_id for row in chunk if row.kind == "return"}
            purchases.update((name, aside.pop(name)) for name in returned & aside.keys())
            purchases.update(recorded_purchases(returned - purchases.keys()))
            # Purchases named but neither recorded nor met yet: later in the file?
            missing = returned - purchases.keys()
            later = sql.staged_purchases(missing) if missing else {}
            ids = iter(reserve_ids(Transaction, len(chunk)))
            expired.read(
                (members[row.member], row.occurred_at)
                for row in chunk
                if row.kind == Transaction.Kind.RETURN and row.member in members
            )
            # The previous chunk is written while this one is computed: the purchases
            # it made or returned are still kept (at least a chunk's worth are), so
            # none is read back before its rows are written. Written even after an
            # error, to be rolled back: later chunks find their returns' purchases in
            # the database once they are no longer kept.
            if not dry_run:
                writer.insert(*computed, analyze=analyze)
            txns, entries = [], []
            for row in chunk:
                member = members.get(row.member)
                before_txn = recorded.get(row.recorded_id)
                # A member erased since has no code left: a row naming none may be theirs.
                if before_txn and (member or before_txn.owner_id is None):
                    same = _same_content(before_txn, row, member, held=row.member in held)
                    imported_before(report, row, same, bad)
                elif member is None:
                    bad(no_member(row.line, row.member))
                    wrong.add(row.external_id)
                elif row.line not in duplicates:
                    at, amount, pk, member_id = row.occurred_at, row.amount, next(ids), member.id
                    if row.kind == Transaction.Kind.PURCHASE:
                        if referral := referral_due(member, plan):  # before it counts
                            paid, points = _referral_rows(
                                member, referrers, referral, row, plan, log, now, batch_id
                            )
                            entries += paid
                            report.given += points
                        try:
                            earned = purchase_earning(
                                member,
                                plan,
                                log,
                                amount=amount,
                                at=at,
                                channel=row.channel,
                                store=row.store,
                                now=now,
                            )
                        except ValidationError as refused:  # no purchase definition (P1),
                            # or more points than one purchase may earn (P2): its amount
                            column = next(iter(getattr(refused, "error_dict", ["kind"])))
                            message = " ".join(refused.messages).rstrip(".")
                            bad(RowError(row.line, column, message))
                            wrong.add(row.external_id)
                            continue
                        purchases[row.external_id] = Purchase(
                            pk, row.external_id, member_id, amount, at, earned
                        )
                        original_id, back = None, []
                    else:
                        bought = purchases.get(row.original_external_id)
                        if bought:
                            purchases.move_to_end(row.original_external_id)
                        try:
                            earned = return_reversal(
                                member, bought, row.original_external_id, amount=amount, at=at
                            )
                        except Refused as refused:
                            if not bought and row.original_external_id in wrong:
                                continue
                            named_later = later.get(row.original_external_id) == row.member
                            if not bought and named_later:
                                refusal = before_its_purchase(row.original_external_id)
                            else:
                                refusal = refused
                            bad(RowError(row.line, *refusal.args))
                            continue
                        original_id = bought.pk
                        back = expired.give_back(
                            member,
                            earned,
                            bought,
                            external_id=row.external_id,
                        )
                        report.given_back += sum(move.points for move in back)
                    txns.append(_transaction_row(pk, row, member_id, original_id, now, batch_id))
                    moves = [earned, *back] if earned else []
                    if bonus := credit(member, plan, moves, at=at, log=log):
                        moves.append(bonus)
                        report.given += bonus.points
                    entries += [_entry_row(member_id, move, pk, now, batch_id) for move in moves]
                    if earned:
                        report.points += earned.points
                        report.taken_back += max(0, -earned.points)
                    report.new += 1
            writer.wait()
            if on_chunk:
                on_chunk(report.rows, staged)
            computed = [] if dry_run else _chunk_tables(txns, entries) + log.tables()
            log.clear()
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
                name, purchase = purchases.popitem(last=False)  # the least recently used
                if name in named:
                    aside[name] = purchase
        writer.insert(*computed)
        writer.wait()
        report.rows += bad_rows(errors)
        report.tier_changes = members_moved(before, locked)
        if not dry_run:
            bulk_update(Member, locked, MEMBER_CACHE_FIELDS)
        sql.drop_staged()
        end_import(report, dry_run=dry_run)
    return report


# The rows the import writes: their columns, and the functions that build them in
# that order. The columns left out are NULL: a transaction's definition (actions are
# not imported), an entry's staff user.
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
    "batch_id",
]


_ENTRY_COLUMNS = [
    "transaction_id",
    "member_id",
    *MOVEMENT_COLUMNS,
    "created_at",
    "batch_id",
    "campaign_points",
    "external_id",
]


def _transaction_row(pk: int, row: ImportRow, member_id: int, original_id, now, batch_id) -> tuple:
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
        batch_id,
    )


def _entry_row(
    member_id: int, move: Movement, transaction_id: int | None, now, batch_id, external_id=None
) -> tuple:
    return (
        transaction_id,
        member_id,
        *movement_values(move),
        now,
        batch_id,
        move.campaign_points,
        external_id,
    )


def lock_referrers(locked: list[Member], plan) -> dict[int, Member]:
    """The referrers the file's purchases may pay (referral_due), locked after the
    file's members, by the id the referred member names: a referrer of the file is the
    same object, a merged referrer its survivor. None when no referral is given."""
    if programme_award(plan, AwardedOn.REFERRAL) is None:
        return {}
    by_pk = {m.pk: m for m in locked}
    named = {m.referred_by_id for m in locked if m.referred_by_id and not m.last_purchase_at}
    survivors = dict(Member.objects.filter(pk__in=named).values_list("pk", owner()))
    missing = set(survivors.values()) - by_pk.keys()
    if missing:
        more = Member.objects.select_for_update(of=("self",)).filter(pk__in=missing)
        by_pk.update((m.pk, m) for m in more.order_by("pk"))
    return {pk: by_pk[survivor] for pk, survivor in survivors.items()}


def _referral_rows(friend, referrers, definition, row, plan, log, now, batch_id):
    """pay_referral for a row: the referrer's entry (and tier-up bonus) as rows, and
    the points they give."""
    referrer = referrers[friend.referred_by_id]
    if not pays(friend, referrer):
        return [], 0
    move = referral_movement(
        friend, referrer, definition, at=row.occurred_at, external_id=row.external_id
    )
    moves = [move]
    if bonus := credit(referrer, plan, moves, at=move.issued_at, log=log):
        moves.append(bonus)
    key = referral_key(friend)
    rows = [
        _entry_row(referrer.pk, m, None, now, batch_id, key if m is move else None) for m in moves
    ]
    return rows, sum(m.points for m in moves)


def _chunk_tables(txns, entries) -> list:
    recorded = events.delivery_rows(
        events.EventType.TRANSACTION_RECORDED, [(t[2], t[0]) for t in txns]
    )
    return [
        (Transaction, _TRANSACTION_COLUMNS, txns),
        (LedgerEntry, _ENTRY_COLUMNS, entries),
        (WebhookDelivery, events.DELIVERY_COLUMNS, recorded),
    ]


def _same_content(txn: Transaction, row, member: Member | None, *, held: bool) -> bool:
    """Whether a row imported before says the same; its member then may have been
    merged since into the member the row's code names now, or erased since, when the
    row's code must name no member (`member` None): txn.owner_id, of
    owner_unless_erased (posting.same_owner; `held`: the import locked `member`)."""
    original = txn.original.external_id if txn.original else ""
    return (
        txn.kind,
        txn.amount,
        txn.occurred_at,
        txn.channel,
        txn.store,
        original,
    ) == (
        row.kind,
        row.amount,
        row.occurred_at,
        row.channel,
        row.store,
        row.original_external_id,
    ) and same_owner(member, txn.owner_id, held=held)
