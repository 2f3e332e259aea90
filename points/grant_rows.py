"""The point grants CSV (DESIGN.md, "Imports and grants from the CX Manager"): reading
a file into checked rows.

    external_id,member,points,reason,definition

Each row is checked on its own here, with the checks of adjust_points (whole points
other than zero, within MAX_ADJUSTMENT_POINTS, a reason); those that need the database
or the other rows (members, definitions, balances, duplicates, rows recorded before)
are made by `points.services.grants`. A row is named by the physical line it starts
on, as a text editor numbers them, as the transaction import names them."""

import re
from collections.abc import Iterator
from operator import itemgetter

from django.core.exceptions import ValidationError

from core.ids import canonical_id, readable_id
from points.csv_files import FIRST_GROUP, GROUP, open_csv, parsed_rows
from points.csv_rows import GRANT_COLUMNS, GRANT_REQUIRED, GrantRow, RowError, naming
from points.models import MANUAL_ADJUSTMENT, PROGRAMME_KEYS, LedgerEntry
from points.services.adjustments import check_adjustment

_ID_LENGTH = LedgerEntry._meta.get_field("external_id").max_length
_WHOLE = re.compile(r"[+-]?[0-9]+")  # 250, -40, +15: ASCII digits, no separator
# 1,000 unquoted: two cells, "1" and "000", FIRST_GROUP then GROUP (docs/rules.md,
# "Granting points from a file").


def read_grants(stream) -> tuple[Iterator[GrantRow], list[RowError]]:
    """Read a grants file (bytes or text; UTF-8, a BOM accepted). Returns the good
    rows, read as they are iterated (a file of any size is never held whole), and the
    list of errors, which fills as they are read: every bad row with its line."""
    records, _, header, errors = open_csv(stream, GRANT_COLUMNS, GRANT_REQUIRED)
    if errors:
        return iter(()), errors
    return _rows(records, header, errors), errors


def _rows(records, header, errors: list) -> Iterator[GrantRow]:
    """The good rows; the errors of the bad ones are added to `errors`."""
    position = {name: i for i, name in enumerate(header)}
    # Without a definition column every row takes the default: an empty cell past the end.
    columns = [position.get(column, len(header)) for column in GRANT_COLUMNS]
    cells_of = itemgetter(*columns)
    at = position["points"]
    yield from parsed_rows(
        records,
        header,
        errors,
        lambda line, cells: parse_grant(line, cells_of(cells)),
        split=lambda line, cells: split_points(line, cells[at:]),
    )


def split_points(line: int, cells) -> RowError | None:
    """Points of one to three digits, then a cell of exactly three digits: 1,000 written
    unquoted. As they stand they read as 1 point for the reason "000", granted without
    a word when no cell is left over (a column more in the header, the row's last cell
    left out). A reason of three digits alone, which tells the member nothing, is
    refused with them. `cells`: the row's, as in the file, from the points column on."""
    groups = [cell.strip() for cell in cells]
    if len(groups) < 2 or not (FIRST_GROUP.fullmatch(groups[0]) and GROUP.fullmatch(groups[1])):
        return None
    count = 2
    while count < len(groups) and GROUP.fullmatch(groups[count]):
        count += 1
    number = ",".join(groups[:count])
    return RowError(
        line,
        "points",
        f"{groups[0]}, then {groups[1]} in the next cell: is there a comma inside the number "
        f"({number})? Write {number.replace(',', '')}",
    )


def parse_grant(line: int, cells) -> tuple[GrantRow | None, list[RowError]]:
    external_id, member, points, reason, definition = (cell.strip() for cell in cells)
    external_id, member = canonical_id(external_id), canonical_id(member)
    errors = []

    def bad(column, reason):
        errors.append(RowError(line, column, reason))

    if not external_id or len(external_id) > _ID_LENGTH:
        bad("external_id", f"an id of 1 to {_ID_LENGTH} characters is required")
    elif external_id.startswith(PROGRAMME_KEYS):
        bad("external_id", f"ids starting {', '.join(PROGRAMME_KEYS)} are the programme's own")
    else:
        try:  # the file sent again with such an id would grant twice (P8)
            readable_id(external_id)
        except ValidationError as exc:
            bad("external_id", exc.message)
    if not member:
        bad("member", "required")
    value = None
    if not _WHOLE.fullmatch(points):
        bad("points", f"{points!r} is not a whole number of points" if points else "required")
    elif len(points) > 18:  # int() refuses 4,300 digits
        bad("points", f"{points[:12]}… ({len(points):,} digits) is more than any limit allows")
    else:
        value = int(points)
    try:
        reason = check_adjustment(value, reason)
    except ValidationError as exc:
        for column, messages in exc.message_dict.items():
            if not (column == "points" and value is None):  # named above
                bad(column, " ".join(messages).rstrip("."))
    if errors:
        return None, naming(errors, external_id, member)
    return GrantRow(line, external_id, member, value, reason, definition or MANUAL_ADJUSTMENT), []
