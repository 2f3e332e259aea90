"""The members CSV contract (DESIGN.md, "Imports and grants from the CX Manager"):
reading a file into checked rows.

    external_id,email,first_name,last_name,phone,joined_at,birth_date,opening_points,opening_lifetime

and, beyond the contract, an optional `last_purchase_at` (a programme migrating in: the
member's last purchase there, from which degradation counts their inactivity). UTF-8, a
BOM accepted. The header must have `external_id` (the customer code) and `email`; the
other columns may be left out of it. In a row only `external_id` is
required: an empty cell changes nothing of a known member, and a new one's e-mail is
required by points.services.member_import, which knows whether the code is new. Each
row is checked on its own here, field by field with the rules enroll_member applies
(members.services.enrolment_errors); the checks across rows and against the database
(a code twice in the file, opening balances given before, a new code's e-mail) are
made by points.services.member_import. Rows are named by the physical line they start
on, as for transactions (points.resources)."""

import functools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.days import latest_allowed
from core.ids import canonical_id
from members.services import enrolment_errors
from points.csv_files import open_csv, parsed_rows
from points.csv_rows import RowError, naming
from points.resources import parse_occurred_at
from tiers.models import MAX_THRESHOLD

COLUMNS = (
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "joined_at",
    "birth_date",
    "opening_points",
    "opening_lifetime",
    "last_purchase_at",
)
REQUIRED = ("external_id", "email")
# An opening balance above this is taken for a typing error (a billion points): the
# highest threshold a tier may have, so that a member migrating in reaches any tier.
MAX_OPENING = MAX_THRESHOLD
_WHOLE = re.compile(r"[0-9]+")


class MemberRow(NamedTuple):
    """A checked row: empty text cells are "", empty dates None, empty balances 0."""

    line: int
    external_id: str
    email: str
    first_name: str
    last_name: str
    phone: str
    joined_at: datetime | None
    birth_date: date | None
    opening_points: int
    opening_lifetime: int
    last_purchase_at: datetime | None


def read_members(stream) -> tuple[Iterator[MemberRow], list[RowError]]:
    """Read a members CSV file (bytes or text). Returns the good rows, read as they are
    iterated (a file of any size is never held whole), and the list of errors, which
    fills as they are read: every bad row, with its line, column and reason."""
    records, _, header, errors = open_csv(stream, COLUMNS, REQUIRED)
    if errors:
        return iter(()), errors
    return _rows(records, header, errors), errors


def _rows(records, header, errors: list) -> Iterator[MemberRow]:
    # The cells of COLUMNS by position; a column left out of the header reads as an
    # empty cell (the position past the end of every row, padded below).
    width = len(header)
    position = {name: i for i, name in enumerate(header)}
    cells_of = itemgetter(*(position.get(column, width) for column in COLUMNS))
    yield from parsed_rows(
        records,
        header,
        errors,
        lambda line, cells: parse_row(line, [cell.strip() for cell in cells_of(cells)]),
    )


def parse_row(line: int, cells) -> tuple[MemberRow | None, list[RowError]]:
    """One row's cells, in COLUMNS order and stripped: the row, or its errors."""
    code, email, first_name, last_name, phone, joined, born, points, lifetime, bought = cells
    code = canonical_id(code)
    errors = []

    def bad(column, reason):
        errors.append(RowError(line, column, reason))

    joined_at = _moment_in("joined_at", joined, bad)
    last_purchase_at = _moment_in("last_purchase_at", bought, bad)
    birth_date = None
    if born:
        try:
            birth_date = date.fromisoformat(born) if len(born) == 10 else None
        except ValueError:
            pass
        if birth_date is None:
            bad("birth_date", f"{born!r} is not a date (YYYY-MM-DD)")
    contact = {
        "external_id": code,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "birth_date": birth_date,
    }
    if joined_at:
        contact["joined_at"] = joined_at
    if not email:
        del contact["email"]  # a known member's is kept; a new one's is required on import
    for column, reason in enrolment_errors(**contact).items():
        bad(column, reason if contact[column] else "required")
    opening_points = _opening(points, "opening_points", bad)
    opening_lifetime = _opening(lifetime, "opening_lifetime", bad)
    if joined_at and last_purchase_at and last_purchase_at < joined_at:
        bad("last_purchase_at", "is before joined_at: a member buys once they have joined")
    elif last_purchase_at and last_purchase_at > latest_allowed():
        # as a purchase's time: a year typed wrong would stop the degradation clock
        bad("last_purchase_at", f"{bought} is more than a day in the future")
    if errors:
        return None, naming(errors, code)
    row = MemberRow(
        line,
        code,
        email,
        first_name,
        last_name,
        phone,
        joined_at,
        birth_date,
        opening_points,
        opening_lifetime,
        last_purchase_at,
    )
    return row, []


def _moment_in(column: str, text: str, bad) -> datetime | None:
    """A moment of the file (joined_at, last_purchase_at), or None: empty, or wrong (said
    in the transactions import's words: not a time, or one the clock change skips or
    repeats, whose offset is asked)."""
    if not text:
        return None
    try:
        moment = _moment(text)
        moment.astimezone(UTC)  # a time the database holds (not year 1 at +01:00)
        timezone.localtime(moment)  # and the programme's days (not year 1 at 00:10 UTC)
    except ValidationError as exc:
        bad(column, " ".join(exc.messages))
    except OverflowError:
        bad(column, f"{text!r} is outside the calendar the programme keeps")
    else:
        return moment
    return None


@functools.lru_cache(maxsize=4096)
def _moment(text: str) -> datetime:
    """parse_occurred_at, remembered: a million members join on a few thousand days."""
    return parse_occurred_at(text)


def _opening(text: str, column: str, bad) -> int:
    """A whole number of points >= 0; empty is 0."""
    if not text:
        return 0
    if not _WHOLE.fullmatch(text):
        if text.startswith("-") and _WHOLE.fullmatch(text[1:]):
            bad(column, f"{text} is negative: an opening balance is 0 or more")
        else:
            bad(column, f"{text!r} is not a whole number of points")
        return 0
    if len(text) > 18:  # int() refuses 4,300 digits or more
        bad(column, f"{text[:12]}… ({len(text):,} digits) is more than {MAX_OPENING:,} points")
        return 0
    value = int(text)
    if value > MAX_OPENING:
        bad(column, f"{value:,} is more than {MAX_OPENING:,} points")
    return value
