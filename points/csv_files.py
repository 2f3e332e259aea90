"""Reading an import file, whatever it holds (transactions, point grants, members): its
text, its records by the physical line they start on, its header, and the cells no
column can hold. Each reader (points.resources, points.grant_rows, points.member_rows)
then checks its own columns."""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import replace

from core.exports import unescape_formula
from points.csv_rows import RowError


def open_csv(stream, columns, required=None) -> tuple[Iterator, int, list[str], list[RowError]]:
    """(records after the header, the header's line, its column names, errors): the
    errors so far are the header's own (a separator other than the comma, a name
    twice, a name not among `columns`: a misspelt optional column would be left out
    unseen), and the `required` columns it lacks (all `columns` unless said); with
    any of them no row is read. The errors list fills as the records are read."""
    errors = []
    records = _records(_reader(stream), errors)
    header_line, cells = next(records, (1, []))
    if not any(cell.strip() for cell in cells):  # blank lines alone: no header to lack columns
        errors.append(
            header_error(
                header_line,
                "file",
                f"the file is empty: its first line is the header {','.join(columns)}",
            )
        )
        return records, header_line, [], errors
    if _utf16(cells):
        # Excel's "Unicode Text" and other tools: every other byte a NUL, which each
        # line would be refused for, and the file's own advice is this one line.
        errors.append(
            header_error(
                header_line,
                "file",
                "the file is UTF-16 text, not UTF-8: save it as CSV UTF-8 "
                "(in Excel: CSV UTF-8 (Comma delimited))",
            )
        )
        return records, header_line, [], errors
    if len(cells) == 1 and (separator := _other_separator(cells[0])):
        # Excel saves "CSV" with semicolons in many languages: every column is there,
        # in one cell; "missing column" eight times would say the opposite.
        errors.append(
            header_error(
                header_line,
                "file",
                f"the header is separated by {separator}, not commas: save the file "
                "comma-separated (in Excel: CSV UTF-8 (Comma delimited))",
            )
        )
        return records, header_line, [], errors
    header = [column_name(name) for name in cells]
    if odd := odd_cell(header_line, (), cells):
        errors.append(replace(odd, header=True))
        # Named by position from here on: no message can quote such a name.
        header = [
            name if odd_cell(header_line, (), [name]) is None else f"column {i + 1}"
            for i, name in enumerate(header)
        ]
    errors += [
        header_error(header_line, column, "missing column")
        for column in (columns if required is None else required)
        if column not in header
    ]
    errors += [
        header_error(header_line, name, f"unknown column: the columns are {', '.join(columns)}")
        for name in header
        if name and name not in columns
    ]
    errors += _repeated(header_line, header)
    return records, header_line, header, errors


# The byte order marks of UTF-16 (FF FE, FE FF) as _text reads bytes that are not UTF-8.
_UTF16_BOMS = ("\udcff\udcfe", "\udcfe\udcff")


def _utf16(cells) -> bool:
    """A header in UTF-16: its byte order mark, or, from a tool that writes none, a NUL
    at every other character (the high byte of each letter: at odd places little-endian,
    at even places big-endian). A text header has no NUL, let alone one in two: one
    here and there is named as a NUL (odd_cell)."""
    text = ",".join(cells)
    if text.startswith(_UTF16_BOMS):
        return True
    return "\x00" in text and ({*text[1::2]} == {"\x00"} or {*text[::2]} == {"\x00"})


def header_error(line: int, column: str, reason: str) -> RowError:
    """What is wrong with the header: the file cannot be read, and no row is counted."""
    return RowError(line, column, reason, header=True)


def _other_separator(cell: str) -> str:
    return next((name for sep, name in ((";", "semicolons"), ("\t", "tabs")) if sep in cell), "")


def _repeated(line: int, header: list[str]) -> list[RowError]:
    """A name twice in the header: which of its columns a row means is anybody's guess
    (two "amount" columns, gross and net), so neither is read."""
    at = {}
    for i, name in enumerate(header):
        if name:  # empty names (a spreadsheet's trailing commas) name nothing
            at.setdefault(name, []).append(str(i + 1))
    return [
        header_error(
            line,
            name,
            f"the header names this column {len(columns)} times "
            f"(columns {', '.join(columns[:-1])} and {columns[-1]}): keep one",
        )
        for name, columns in at.items()
        if len(columns) > 1
    ]


# A file wrong on most of its rows (dates written another way, another programme's
# codes) is read this far, no further: its errors are listed, and the worker's memory
# (a few KB an error) stays bounded whatever the file's size.
ERRORS_READ = 50_000


def parsed_rows(records, header, errors: list, parse, split=None) -> Iterator:
    """The good rows `parse(line, cells)` makes of the records (it returns a row and
    its errors), `cells` padded with empty cells to one past the header's width: a
    column left out of the header reads as that last, empty cell. The errors of the
    other rows are added to `errors`, as are those of the records no column can hold
    (a cell that is not text, more cells than the header). `split(line, cells)`, if
    given, finds a number a comma cut in two (points.grant_rows): its error, naming
    the number's column, is the row's only one, whatever the row's width; so is a
    value under a column the header leaves without a name. Reading stops after
    ERRORS_READ errors, saying so on the line it stopped at."""
    width = len(header)
    unnamed = [i for i, name in enumerate(header) if not name]  # a spreadsheet's extra commas
    for line, cells in records:
        if stop_reading(errors, line):
            return
        count = len(cells)
        cut = split(line, cells) if split else None
        if count > width and not cut and any(cell.strip() for cell in cells[width:]):
            errors.append(_more_cells(line, count, width))
            continue
        cells = cells[:width] + [""] * (width + 1 - min(count, width))
        text = "".join(cells)
        if ("\x00" in text or not text.isascii()) and (odd := odd_cell(line, header, cells)):
            errors.append(odd)
            continue
        if not cut and unnamed and (filled := [i for i in unnamed if cells[i].strip()]):
            cut = _unnamed(line, filled[0], cells[filled[0]])  # the row's one error too
        # An export's cells as they were: it quoted those a spreadsheet would run.
        row, row_errors = parse(line, [unescape_formula(cell) for cell in cells])
        if cut:
            # Parsed all the same for its id: a row below repeating it is a duplicate.
            known = row.external_id if row else next((e.external_id for e in row_errors), "")
            errors.append(replace(cut, external_id=known))
        elif not row_errors and count > width and _number_cut(cells):
            # Empty cells past the header, but a number a comma cut in two before them
            # ("1,250" then an empty last cell): read as 1 and 250, in the wrong columns.
            errors.append(replace(_more_cells(line, count, width), external_id=row.external_id))
        elif not row_errors:
            # Empty cells past the header: a spreadsheet's trailing commas.
            yield row
        elif count > width:
            # Or a comma inside a value (1,000.00) that moved every cell after it one
            # column on: their own errors would name the wrong columns ("000.00" is not
            # a date), so the row gets one, that says why.
            errors.append(
                replace(_more_cells(line, count, width), external_id=row_errors[0].external_id)
            )
        else:
            errors += row_errors


# A number written with thousands commas, cut into cells by them: "1,250.50" is the
# first group (1), then groups of three (250.50: the last may hold the decimals).
FIRST_GROUP = re.compile(r"[+-]?[0-9]{1,3}")
GROUP = re.compile(r"[0-9]{3}")
_LAST_GROUP = re.compile(GROUP.pattern + r"(\.[0-9]*)?")


def _number_cut(cells) -> bool:
    """Whether two neighbouring cells read as one number with a thousands separator
    (1 and 250, 12 and 000.50): in a row longer than the header, where the cell
    left over is empty, the likelier reading."""
    cells = [cell.strip() for cell in cells]
    return any(
        FIRST_GROUP.fullmatch(first) and _LAST_GROUP.fullmatch(then)
        for first, then in zip(cells, cells[1:], strict=False)
    )


def _unnamed(line: int, position: int, cell: str) -> RowError:
    """A value under a column the header leaves without a name: read as nothing, it
    would be left out unseen (a grant's definition, say)."""
    return RowError(
        line,
        f"column {position + 1}",
        f"{cell.strip()[:40]!r} is in a column without a name in the header: name the "
        "column, or leave its cells empty",
    )


def stop_reading(errors: list, line: int) -> bool:
    """Whether `errors` reached ERRORS_READ, reading the file or checking its rows
    against the programme (another programme's codes): then the line reached says so,
    once, and no more rows are read or checked."""
    if len(errors) < ERRORS_READ:
        return False
    notice = (
        f"{ERRORS_READ:,} errors by this line: the file was read no further. Put right the "
        "mistake the errors above show (often the same on every row) and check it again."
    )
    if not errors[-1].stopped:
        errors.append(RowError(line, "row", notice, stopped=True))
    return True


def _more_cells(line: int, count: int, width: int) -> RowError:
    return RowError(
        line,
        "row",
        f"{count} cells, the header has {width} columns: is there a comma inside a value? "
        "Write amounts without a thousands separator (1000.00, not 1,000.00), and text "
        'with a comma in quotes ("Madrid, Centro")',
    )


def column_name(name) -> str:
    """A header's name as the contract spells it: "External_ID " is external_id."""
    return (name or "").strip().lstrip("\ufeff").lower()


def odd_cell(line: int, names, cells) -> RowError | None:
    """The first cell holding a NUL character or bytes that are not UTF-8: no text
    column can store them (PostgreSQL refuses NUL), and no message can quote them."""
    for i, cell in enumerate(cells):
        name = names[i] if i < len(names) else f"column {i + 1}"
        if "\x00" in cell:
            return RowError(line, name, "a NUL character (byte 0x00)")
        try:
            cell.encode()
        except UnicodeEncodeError as exc:  # a byte escaped by _text
            byte = ord(cell[exc.start]) - 0xDC00
            return RowError(
                line, name, f"not UTF-8 text (byte 0x{byte:02X}): save the file as UTF-8"
            )
    return None


def _text(stream):
    """The file as text. A byte that is not UTF-8 is kept, escaped (a lone surrogate),
    for the check of its row to name: decoding ahead of the rows cannot tell its line."""
    if isinstance(stream, io.TextIOBase):
        return stream
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _reader(stream):
    """csv's reader, strict: a quote left open would otherwise take the rest of the file
    into one cell without a word (a grant's reason swallowing the rows below it, never
    granted), and text after a closing quote would be run into it."""
    return csv.reader(_text(stream), strict=True)


def _records(reader, errors: list) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each row that is not blank, the line being the physical line the
    row starts on (csv's line_num after a row is the line it ends on). A row of empty
    cells (",,,,": a spreadsheet's row whose contents were cleared) or of spaces alone
    is blank too: it holds nothing to import. A row csv cannot
    read (a cell over its limit of 128 KB, from a quote left open) is added to errors and
    reading goes on with the next line."""
    end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowError(end + 1, "row", _unreadable(exc)))
        else:
            if any(cell.strip() for cell in cells):
                yield end + 1, cells
        end = reader.line_num


def _unreadable(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a cell longer than {csv.field_size_limit():,} characters (is a quote left open?)"
    if "unexpected end of data" in str(exc):
        return (
            "a quote opened on this line is never closed: every line below it would be "
            "read as one cell. Close the quote, or write the text without it"
        )
    if "expected after" in str(exc):
        return (
            'text after a closing quote: inside quoted text write a quote as two ("12"" '
            'screen"), and put nothing between the closing quote and the comma'
        )
    return f"not readable as CSV ({exc})"
