"""Every write to the ledger (P1-P8): nothing else creates a LedgerEntry. One module
per use case, each reading its rules (rules.py) and writing through the one ledger
writer (posting.py); every hand-written statement is in sql.py (the grants import's in
grants_sql.py, the members import's in member_bulk.py).

    rules        P2-P4 and what a transaction may be, as pure functions
    posting      the ledger writer: lock, entries, caches, tier (T2)
    earning      purchases (D3, P2, P3) and actions
    returns      returns (P4)
    adjustments  manual adjustments (P6), and the checks every adjustment passes
    expiry       block expiry and reminders (E1-E4)
    importing    the CSV import of transactions
    grants       point grants: a file of adjustments (P6 per row), all or nothing
    grants_sql   the grants import's staging table and ledger rows
    member_import  members: enrolments, contact details, opening balances
    member_bulk  the members import's staging table, chunks and rows
    merging      a duplicate account merged into the one the customer keeps
    sql          hand-written statements and vendor switches

The contract names of DESIGN.md ("Service API") are exported here."""

from points.services.adjustments import NOT_GIVEN_BY_HAND, adjust_points
from points.services.earning import award_action, record_purchase
from points.services.expiry import (
    expire_chunk,
    expire_points,
    finish_cutoff,
    pending_cutoffs,
    send_expiry_reminders,
)
from points.services.grants import import_grants
from points.services.importing import PREVIEW_ROWS, ImportReport, import_transactions
from points.services.member_import import MemberImportReport, import_members
from points.services.merging import merge_members, merge_preview
from points.services.posting import lock_member, post_redemption, post_refund
from points.services.returns import record_return

__all__ = [
    "NOT_GIVEN_BY_HAND",
    "PREVIEW_ROWS",
    "ImportReport",
    "MemberImportReport",
    "adjust_points",
    "award_action",
    "expire_chunk",
    "expire_points",
    "finish_cutoff",
    "import_grants",
    "import_members",
    "import_transactions",
    "lock_member",
    "merge_members",
    "merge_preview",
    "pending_cutoffs",
    "post_redemption",
    "post_refund",
    "record_purchase",
    "record_return",
    "send_expiry_reminders",
]
