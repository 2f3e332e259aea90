"""The members import (DESIGN.md, "Imports and grants from the CX Manager"): checked
rows (points.member_rows) enrol new members and update the contact details of known
ones, all or nothing; for a programme migrating in, opening balances are written once
per member as ledger entries of the "Opening balance" definition, and the member
starts in the tier its lifetime points reach (tiers.services.open_at_tier: no bonus,
no message). The rules are here and in the services they come from (enroll_member's
field checks, the entry tier and the "joined" history row; the tier rules); how it
stays fast (staging, chunks, COPY) is in points.services.member_bulk.

Rules of a row, besides its own fields (checked by the parser):
- a code twice in the file is an error on every line after the first;
- a new code enrols a member in the entry tier, joined at `joined_at` (the import's
  time if empty), with a "joined" history row and a member.enrolled event, as
  enroll_member does; its e-mail is required (the parser lets an empty one through,
  which keeps a known member's);
- a new code's `last_purchase_at` (optional: its last purchase in the programme it
  migrates from) is its last purchase here, from which degradation counts (D2); without
  it, degradation counts from joining;
- a known code's member is locked only if its row may change it or list an error
  (member_bulk.lock_members); a row that leaves it as it is is skipped without a lock,
  and whatever others change in that member while the file runs stands;
- a known code updates email, names, phone and birth date; an empty cell keeps what is
  stored, and `joined_at` and `last_purchase_at` are kept as they are (history:
  degradation counts from them); the row counts as updated if anything changed, skipped otherwise;
- each opening balance (points: redeemable, not tier-counting; lifetime: tier-counting,
  not redeemable) is an entry issued at the import's time whose external_id is made of
  the code, so it is written once: the same amount again is skipped, another amount is
  an error (a correction is a manual adjustment), 0 or empty writes nothing;
- the opening lifetime points place the member in the tier they reach, recorded with
  reason opening_balance; no tier-up bonus and no message, the best tier set to it;
- a new member gets the programme's welcome points, as enroll_member gives them;
- a code an erased customer held is refused: the file does not enrol them again;
- a merged account's code (closed) changes nothing: skipped, or an error if it brings
  an opening balance it was not given before the merge (`_Import.merged`)."""

from dataclasses import dataclass, field
from typing import ClassVar

from django.db import transaction
from django.utils import timezone

from core import events
from core.bulk import CopyBehind, bulk_update, reserve_ids, without_cycle_collection
from core.models import WebhookDelivery
from members.models import Member, TierChange
from members.selectors import erased_codes
from points.csv_rows import RowError, bad_rows, summed_up
from points.models import (
    OPENING_BALANCE,
    OPENING_LIFETIME_KEY,
    OPENING_POINTS_KEY,
    LedgerEntry,
)
from points.selectors import programme
from points.services import member_bulk
from points.services.importing import end_import
from points.services.member_bulk import UPDATED_FIELDS, Staged
from points.services.posting import Movement, duplicate_lines, movement_values
from points.services.referrals import WELCOME_KEY, welcome_movement
from tiers.services import TierLog, open_at_tier

IMPORT_CHUNK = 25_000  # rows computed and written at a time
POINTS_REASON = "Opening balance: points brought from the previous programme"
LIFETIME_REASON = "Opening balance: lifetime points from the previous programme (tier only)"
CONTACT_FIELDS = ("email", "first_name", "last_name", "phone", "birth_date")


@dataclass
class MemberImportReport:
    rows: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    points: int = 0  # opening points written
    lifetime: int = 0  # opening lifetime points written
    given: int = 0  # the welcome points of the new members
    tier_changes: int = 0  # members placed above the entry tier by their opening balance
    members: int = 0  # of the file: new, updated and skipped
    errors: list = field(default_factory=list)

    # What a file with a bad row did not do (end_import).
    WRITTEN: ClassVar = ("new", "updated", "points", "lifetime", "given", "tier_changes")

    def summary(self) -> str:
        return (
            f"new={self.new} updated={self.updated} skipped={self.skipped} "
            f"errors={summed_up(self.errors)}"
        )


@dataclass(slots=True)
class _Status:
    """What the tier rules read and change of a member (tiers.services.open_at_tier)."""

    pk: int
    qualified_tier_id: int
    effective_tier_id: int
    best_tier_id: int
    points_balance: int
    lifetime_points: int
    granted_tier_id: int | None = None  # a status match holds it at least there (G5)


def import_members(
    rows, *, errors=(), dry_run=False, batch=None, on_chunk=None
) -> MemberImportReport:
    """Apply checked member rows (points.member_rows.read_members) in one database
    transaction, all or nothing: any bad row, or `dry_run`, rolls everything back, and
    every bad row is in the report's errors. `rows` may be an iterator and `errors` may
    fill while it is read. Opening-balance entries name `batch` (a core.ImportBatch)
    when given; `on_chunk(done, total)` hears how many staged rows are computed. The
    same file twice changes nothing the second time."""
    report = MemberImportReport()
    with transaction.atomic(), CopyBehind() as writer, without_cycle_collection():
        member_bulk.lock_imports()
        member_bulk.stage(rows)
        report.errors += errors  # complete once the rows are read
        duplicates = duplicate_lines(member_bulk.duplicates, report)
        member_bulk.lock_members()
        staged = member_bulk.staged_count()
        work = _Import(report, batch_id=getattr(batch, "pk", batch))
        _apply_chunks(report, work, writer, duplicates, staged, on_chunk)
        member_bulk.drop_staged()
        report.rows += bad_rows(errors)
        report.members = report.new + report.updated + report.skipped
        end_import(report, dry_run=dry_run)
    return report


def _apply_chunks(report, work, writer, duplicates, staged, on_chunk) -> None:
    """The staged rows through the rules a chunk at a time, each chunk written while
    the next is computed; nothing is written once a row is bad (it would all be
    rolled back)."""
    computed = []
    for chunk in member_bulk.chunks(IMPORT_CHUNK):
        report.rows += len(chunk)
        ids = iter(reserve_ids(Member, sum(row.member_id is None for row in chunk)))
        writer.insert(*(computed if not report.errors else ()))
        updated = []
        work.erased = erased_codes(row.external_id for row in chunk if row.member_id is None)
        for row in chunk:
            if row.line not in duplicates:
                work.apply(row, ids, updated)
        writer.wait()
        if updated and not report.errors:
            bulk_update(Member, updated, UPDATED_FIELDS)
        if on_chunk:
            on_chunk(report.rows, staged)
        computed = work.tables()
    writer.insert(*(computed if not report.errors else ()))
    writer.wait()


class _Import:
    """The rules applied to the rows of one import, a chunk at a time: the rows to
    write pile up here until `tables()` hands them over."""

    def __init__(self, report: MemberImportReport, *, batch_id):
        self.report, self.batch_id = report, batch_id
        self.now = timezone.now()
        self.plan = plan = programme()
        self.ranking = plan.ranking
        self.entry = plan.ranking.entry.pk  # enroll_member's tier (Member.entry_tier)
        self.opening = plan.definition(OPENING_BALANCE).pk
        self.log = TierLog()
        self.date_value = member_bulk.date_value()
        self.members, self.joined, self.entries, self.enrolled = [], [], [], []
        self.erased = set()  # the new codes of the chunk that erased customers held

    def bad(self, row: Staged, column: str, reason: str) -> None:
        self.report.errors.append(RowError(row.line, column, reason))

    def apply(self, row: Staged, ids, updated: list) -> None:
        if row.member_id is None and row.external_id in self.erased:
            next(ids)  # reserved for it: unused, as ids of rows rolled back are
            self.bad(
                row,
                "external_id",
                f"{row.external_id} was a customer erased at their request: a file does not "
                "enrol them again (an agent enrols them by hand if they ask to join)",
            )
        elif row.member_id is None:
            self.enrol(row, next(ids))
        elif not row.writes:  # as the file says when it was locked (lock_members): not held
            self.report.skipped += 1
        elif row.erased:
            self.bad(row, "external_id", f"{row.external_id} was erased: it cannot be imported")
        elif row.survivor:
            self.merged(row)
        else:
            self.update(row, updated)

    def merged(self, row: Staged) -> None:
        """A merged account's code: closed, its contact details are those of an account
        the customer no longer uses and change nothing, neither its own nor its
        survivor's. Its opening balances moved with the merge: the same amounts again
        are skipped; any other is an error that names the survivor."""
        for column, given, owner, recorded in (
            ("opening_points", row.opening_points, row.points_member_id, row.points_given),
            ("opening_lifetime", row.opening_lifetime, row.lifetime_member_id, row.lifetime_given),
        ):
            if given and (owner != row.member_id or recorded != given):
                self.bad(
                    row,
                    column,
                    f"{row.external_id} was merged into {row.survivor} and takes no new "
                    f"opening balance: correct {row.survivor}'s with a manual adjustment",
                )
                return
        self.report.skipped += 1

    def enrol(self, row: Staged, pk: int) -> None:
        """A new code: the member enroll_member would make, with its opening balances."""
        if not row.email:
            self.bad(row, "email", "required")
            return
        for column, owner in (
            ("opening_points", row.points_member_id),
            ("opening_lifetime", row.lifetime_member_id),
        ):
            if owner is not None:  # the code of an erased or renamed member
                self.bad(row, column, f"already given under {row.external_id} to another member")
                return
        joined_at = row.joined_at or self.now
        if row.last_purchase_at and row.last_purchase_at < joined_at:  # no joined_at given
            self.bad(row, "joined_at", "required with last_purchase_at (else it is now)")
            return
        status = _Status(pk, self.entry, self.entry, self.entry, 0, 0)
        self.joined.append((pk, TierChange.Reason.JOINED, self.entry, self.entry, joined_at))
        self.enrolled.append((pk, pk))
        self.open(status, row, row.opening_points, row.opening_lifetime)
        self.welcome(status, joined_at)
        self.members.append(
            (
                pk,
                row.external_id,
                row.email,
                row.first_name,
                row.last_name,
                row.phone,
                joined_at,
                self.date_value(row.birth_date),
                status.qualified_tier_id,
                status.effective_tier_id,
                status.best_tier_id,
                status.points_balance,
                status.lifetime_points,
                row.last_purchase_at,
            )
        )
        self.report.new += 1

    def update(self, row: Staged, updated: list) -> None:
        """A known code: its contact details, and opening balances not given before."""
        opening = []
        for column, given, owner, recorded in (
            ("opening_points", row.opening_points, row.points_member_id, row.points_given),
            ("opening_lifetime", row.opening_lifetime, row.lifetime_member_id, row.lifetime_given),
        ):
            if not given:
                opening.append(0)
            elif owner is None:
                opening.append(given)
            elif owner != row.member_id:
                self.bad(row, column, f"already given under {row.external_id} to another member")
                return
            elif recorded != given:
                self.bad(
                    row,
                    column,
                    f"{row.external_id} already has an opening balance of {recorded:,}, not "
                    f"{given:,}: correct it with a manual adjustment",
                )
                return
            else:
                opening.append(0)  # given before: skipped
        contact = {
            name: value
            for name in CONTACT_FIELDS
            if (value := getattr(row, name)) not in ("", None)
            and value != getattr(row, f"stored_{name}")
        }
        if not (contact or any(opening)):
            self.report.skipped += 1
            return
        status = _Status(
            row.member_id,
            row.qualified_tier_id,
            row.effective_tier_id,
            row.best_tier_id,
            row.points_balance,
            row.lifetime_points,
            row.granted_tier_id,
        )
        self.open(status, row, *opening)
        stored = {name: getattr(row, f"stored_{name}") for name in CONTACT_FIELDS}
        updated.append(
            Member(
                pk=row.member_id,
                **(stored | contact),
                points_balance=status.points_balance,
                lifetime_points=status.lifetime_points,
                qualified_tier_id=status.qualified_tier_id,
                effective_tier_id=status.effective_tier_id,
                best_tier_id=status.best_tier_id,
            )
        )
        self.report.updated += 1

    def open(self, status: _Status, row: Staged, points: int, lifetime: int) -> None:
        """Write opening balances (those > 0) for a member and place it in its tier."""
        if points:
            self.entries.append(
                self.entry_row(status.pk, OPENING_POINTS_KEY, row, points, False, True)
            )
            status.points_balance += points
            self.report.points += points
        if lifetime:
            self.entries.append(
                self.entry_row(status.pk, OPENING_LIFETIME_KEY, row, lifetime, True, False)
            )
            status.lifetime_points += lifetime
            self.report.lifetime += lifetime
            if open_at_tier(status, self.ranking, at=self.now, log=self.log):
                self.report.tier_changes += 1

    def welcome(self, status: _Status, joined_at) -> None:
        """enroll_member's welcome points (points.services.referrals), issued when the
        member joined. Tier-counting ones place the member as opening balances do: the
        import brings members in, it pays no tier-up bonus."""
        move = welcome_movement(self.plan, at=joined_at)
        if move is None:
            return
        key = f"{WELCOME_KEY}{status.pk}"
        self.entries.append((status.pk, *movement_values(move), self.now, key, self.batch_id))
        self.report.given += move.points
        status.points_balance += move.points if move.redeemable else 0
        if move.counts_toward_tier:
            status.lifetime_points += move.points
            if open_at_tier(status, self.ranking, at=self.now, log=self.log):
                self.report.tier_changes += 1

    def entry_row(self, member_id, key, row, points, counts_toward_tier, redeemable) -> tuple:
        reason = LIFETIME_REASON if counts_toward_tier else POINTS_REASON
        move = Movement(
            LedgerEntry.Kind.BONUS,
            points,
            self.opening,
            counts_toward_tier,
            redeemable,
            self.now,
            self.now,
            reason,
        )
        return (member_id, *movement_values(move), self.now, key + row.external_id, self.batch_id)

    def tables(self) -> list:
        """The rows computed since the last call, as (model, columns, rows) for
        core.bulk.CopyBehind: members first, then the rows that name them."""
        enrolled = events.delivery_rows(events.EventType.MEMBER_ENROLLED, self.enrolled)
        tables = [
            *member_bulk.tables(self.members, self.joined, self.entries),
            (WebhookDelivery, events.DELIVERY_COLUMNS, enrolled),
            *self.log.tables(),
        ]
        self.members, self.joined, self.entries, self.enrolled = [], [], [], []
        return tables
