"""Point grants: a file of manual adjustments (P6 per row), applied all or nothing,
idempotent on each row's external_id (P8), attributed to the staff user who uploads
it. Each row passes the checks of adjust_points (points.services.adjustments); how
the file stays fast (staging, COPY while the next chunk is computed) is in
points.services.grants_sql and core.bulk."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.bulk import CopyBehind, bulk_update, without_cycle_collection
from core.words import counted
from members.models import Member
from members.selectors import owner_unless_erased, survivors_of
from points.csv_files import stop_reading
from points.csv_rows import RowError, bad_rows
from points.models import LedgerEntry
from points.selectors import Balances, pending_by_member, programme
from points.services import goodwill
from points.services import grants_sql as sql
from points.services.adjustments import (
    check_adjuster,
    check_definition,
    check_removal,
)
from points.services.importing import (
    ImportReport,
    end_import,
    imported_before,
    members_moved,
    tiers_held,
)
from points.services.posting import (
    MEMBER_CACHE_FIELDS,
    credit,
    distinct_members,
    duplicate_lines,
    lock_members_written_for,
    movement,
    no_member,
    same_owner,
    unknown_members_of_bad_rows,
)
from points.services.rules import check_receives
from tiers.services import Reason as TierReason
from tiers.services import TierLog

GRANT_CHUNK = 25_000  # rows computed and written at a time
Kind = LedgerEntry.Kind
MANUAL = TierReason.MANUAL  # T4: the tier changes a grant makes
# What an uploader above their goodwill limit reads on the rows concerned.
# (Not "split it": rows under the limit per adjustment would only get round it.)
ASK = "for the uploader: ask a CX supervisor to import the file"


def check_granter(by) -> None:
    """Who grants points by file: an active staff user with the permission to import
    grants (the Marketer and CX supervisor groups). The grants are theirs, and so are
    the goodwill limits they are checked against."""
    check_adjuster(by)
    if not by.is_active:
        raise ValidationError(f"{by} is not an active user.")
    if not by.has_perm("points.import_grants"):
        raise ValidationError(
            f"{by} may not import point grants (the permission 'Can import point grants', "
            "which the Marketer and CX supervisor groups have)."
        )


def import_grants(rows, *, by, errors=(), dry_run=False, batch=None, now=None) -> ImportReport:
    """Apply checked grant rows (points.grant_rows) in file order, each as
    adjust_points would (P6: a bonus or action definition, available at once,
    counting toward the tier as its definition says, a negative one never taking the
    available balance below zero), all or nothing, in one database transaction.

    `rows` may be an iterator and `errors` (the parser's) may fill while it is read:
    the rows are staged in a temporary table as they come, so memory holds a chunk and
    the file's members whatever the file's size. A row whose external_id was recorded
    before with the same content is skipped; with other content it is an error. Any
    bad row, or `dry_run`, rolls everything back; the report names every bad row.
    The members the file writes for are locked first (in id order, the lock every
    writer of points takes), so an import of the same file at the same time waits,
    then skips; those whose rows were all recorded before are only compared. Every
    entry written names `batch`, when given, and `by`.

    Goodwill limits (points.services.goodwill) are `by`'s: a row above the limit per
    adjustment, or that takes what `by` gave this month above the monthly limit, is
    an error, so the file imports nothing; whoever's limits cover it (a supervisor)
    imports it, or it is split."""
    check_adjuster(by)  # and check_granter, by the doors: the command, the confirmation
    limits = goodwill.limits_for(by)
    report = ImportReport()
    bad = report.errors.append
    with transaction.atomic(), CopyBehind() as writer, without_cycle_collection():
        goodwill.lock_user(by)  # before the members, as an adjustment by hand takes them
        sql.stage_rows(rows)
        report.errors += errors  # complete once the rows are read
        report.errors += unknown_members_of_bad_rows(errors)
        duplicates = duplicate_lines(sql.staged_duplicates, report)
        held, members = lock_members_written_for(sql)
        locked = distinct_members(held)
        # The clock is read once the locks are held, as adjust_points reads it.
        now = now or timezone.now()
        given = goodwill.given_this_month(by, now) if limits else 0
        by_file = 0  # of `given`, by the file's rows so far
        removing = survivors_of(sql.members_removing()).values("pk")
        pending = pending_by_member(removing, now=now)  # grants add none: fixed for the file
        # The page's and the list's "Members", as other imports
        report.members = len(distinct_members(members))
        before = tiers_held(locked)
        plan = programme()
        log = TierLog()
        link = dict(by_id=by.pk, batch_id=batch.pk if batch else None, now=timezone.now())
        computed = []  # the tables of the last chunk, not yet written
        for chunk in sql.staged_chunks(GRANT_CHUNK):
            if stop_reading(report.errors, chunk[0].line):
                break
            report.rows += len(chunk)
            recorded = _recorded(row.recorded_id for row in chunk)
            # The previous chunk is written while this one is computed.
            writer.insert(*computed)
            entries = []
            for row in chunk:
                member = members.get(row.member)
                definition = plan.named(row.definition)
                granted = recorded.get(row.recorded_id)
                # A member erased since has no code left: a row naming none may be theirs.
                erased_since = member is None and granted is not None and granted[0] is None
                if member is None and not erased_since:
                    bad(no_member(row.line, row.member))
                    continue
                if definition is None:
                    bad(RowError(row.line, "definition", f"no definition {row.definition!r}"))
                    continue
                if granted is not None:
                    same = _same_grant(granted, row, member, definition, held=row.member in held)
                    imported_before(report, row, same, bad)
                    continue
                if row.line in duplicates:
                    continue
                try:
                    check_definition(definition, row.points)
                    check_receives(member, points=row.points, field="points")
                    available = Balances.of(member, pending.get(member.pk)).available
                    check_removal(member, definition, row.points, available=available)
                except ValidationError as refused:
                    for column, messages in refused.message_dict.items():
                        bad(RowError(row.line, column, " ".join(messages).rstrip(".")))
                    continue
                if above := goodwill.above_limit(limits, row.points, given, now, by_file=by_file):
                    bad(
                        RowError(
                            row.line, "points", f"{counted(row.points, 'point')} is {above} {ASK}"
                        )
                    )
                    continue
                given += max(row.points, 0)
                by_file += max(row.points, 0)
                grant = movement(definition, Kind.ADJUSTMENT, row.points, at=now, reason=row.reason)
                # T2 as post_entries applies it: a tier reached for the first time pays its bonus.
                bonus = credit(member, plan, [grant], at=now, log=log, reason=MANUAL, by=by)
                entries.append(sql.entry_row(member.pk, grant, external_id=row.external_id, **link))
                if bonus:
                    entries.append(sql.entry_row(member.pk, bonus, external_id=None, **link))
                    report.given += bonus.points
                report.points += row.points
                report.taken_back += max(0, -row.points)  # what is granted and removed, apart
                report.new += 1
            writer.wait()
            computed = [(LedgerEntry, sql.ENTRY_COLUMNS, entries), *log.tables()]
        writer.insert(*computed)
        writer.wait()
        report.rows += bad_rows(errors)
        report.tier_changes = members_moved(before, locked)
        bulk_update(Member, locked, MEMBER_CACHE_FIELDS)
        sql.drop_staged()
        end_import(report, dry_run=dry_run)
    return report


def _recorded(ids) -> dict[int, tuple]:
    """What the entries recorded under these ids say (_same_grant), by id."""
    ids = [pk for pk in ids if pk]
    if not ids:
        return {}
    # The member now holding the entry's points: a grant given before a merge is the
    # same grant when its code (now the survivor's) is imported again; none for a member
    # erased since.
    rows = LedgerEntry.objects.filter(pk__in=ids).values_list(
        "pk", owner_unless_erased("member"), "kind", "points", "reason", "definition_id"
    )
    return {pk: content for pk, *content in rows}


def _same_grant(granted: tuple, row, member: Member | None, definition, *, held: bool) -> bool:
    """Whether a grant recorded before (_recorded) says what the row says, for the
    member the row's code names (posting.same_owner; `held`: the import locked it)."""
    owner_id, *content = granted
    return content == [Kind.ADJUSTMENT, row.points, row.reason, definition.pk] and same_owner(
        member, owner_id, held=held
    )
