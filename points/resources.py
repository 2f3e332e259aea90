"""The transaction CSV contract (DESIGN.md): reading a file into checked rows.

    external_id,member,kind,amount,occurred_at,channel,store,original_external_id

Each row is checked on its own here (format, kinds, amounts, dates); the checks that
need the database or the other rows (members, duplicates, originals, what is left to
return) are made by `points.services.importing`. Both doors, the command and
the admin's import page, read files with read_transactions: a row is named by the
physical line it starts on, as a text editor numbers them."""

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, time
from operator import itemgetter

import tablib
from django.core.exceptions import ValidationError
from django.utils import timezone
from import_export import fields
from import_export.formats import base_formats
from import_export.results import Result, RowResult

from core.exports import FormulaSafeResource
from points.csv_rows import COLUMNS, KINDS, ImportRow, RowError
from points.models import Channel, Transaction
from points.services import PREVIEW_ROWS, import_transactions
from points.services.rules import TransactionLimits, check_transaction, transaction_limits


def read_transactions(stream, *, now=None) -> tuple[Iterator[ImportRow], list[RowError]]:
    """Read a CSV file (bytes or text; UTF-8, a BOM accepted). Returns the good rows,
    read as they are iterated so that a file of any size is never held whole, and the
    list of errors, which fills as they are read: every bad row, with the physical line
    it starts on (blank lines and the lines inside quoted cells counted), whatever is in
    it."""
    errors = []
    records = _records(csv.reader(_text(stream)), errors)
    header_line, cells = next(records, (1, []))
    header = [_column(name) for name in cells]
    if odd := _odd_cell(header_line, (), cells):
        errors.append(odd)
    errors += [
        RowError(header_line, column, "missing column")
        for column in COLUMNS
        if column not in header
    ]
    if errors:
        return iter(()), errors
    return _rows(records, header, errors, transaction_limits(now)), errors


def _text(stream):
    """The file as text. A byte that is not UTF-8 is kept, escaped (a lone surrogate),
    for the check of its row to name: decoding ahead of the rows cannot tell its line."""
    if isinstance(stream, io.TextIOBase):
        return stream
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _records(reader, errors: list) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each row that is not blank, the line being the physical line the
    row starts on (csv's line_num after a row is the line it ends on). A row csv cannot
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
            if cells:
                yield end + 1, cells
        end = reader.line_num


def _unreadable(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a cell longer than {csv.field_size_limit():,} characters (is a quote left open?)"
    return f"not readable as CSV ({exc})"


def _column(name) -> str:
    return (name or "").strip().lstrip("\ufeff")


def _rows(records, header, errors: list, limits: TransactionLimits) -> Iterator[ImportRow]:
    """The good rows; the errors of the bad ones are added to `errors`."""
    # The cells of COLUMNS by position, as csv.DictReader would find them (the last of
    # a repeated name; missing cells empty), without a dict a row.
    position = {name: i for i, name in enumerate(header)}
    cells_of = itemgetter(*(position[column] for column in COLUMNS))
    width = len(header)
    for line, cells in records:
        if len(cells) < width:
            cells += [""] * (width - len(cells))
        elif len(cells) > width and any(cell.strip() for cell in cells[width:]):
            errors.append(
                RowError(line, "row", f"{len(cells)} cells, the header has {width} columns")
            )
            continue
        text = "".join(cells)
        if ("\x00" in text or not text.isascii()) and (odd := _odd_cell(line, header, cells)):
            errors.append(odd)
            continue
        row, row_errors = parse_row(line, cells_of(cells), limits)
        if row_errors:
            errors += row_errors
        else:
            yield row


def _odd_cell(line: int, names, cells) -> RowError | None:
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


def parse_row(
    line: int, cells, limits: TransactionLimits
) -> tuple[ImportRow | None, list[RowError]]:
    external_id, member, kind, amount, occurred_at, channel, store, original = map(str.strip, cells)
    errors = []

    def bad(column, reason):
        errors.append(RowError(line, column, reason))

    if not member:
        bad("member", "required")
    if kind not in KINDS:
        bad("kind", f"unknown kind {kind!r}: purchase or return")
    channel = channel or Channel.IMPORT
    try:
        moment = parse_occurred_at(occurred_at)
    except ValidationError as exc:
        bad("occurred_at", _reason(exc))
        moment = None
    try:
        amount = check_transaction(
            external_id=external_id,
            amount=amount,
            occurred_at=moment,
            channel=channel,
            store=store,
            limits=limits,
            shown_time=occurred_at,
        )
    except ValidationError as exc:
        for column, messages in exc.message_dict.items():
            if not (column == "occurred_at" and moment is None):  # named above
                bad(column, " ".join(messages).rstrip("."))
    occurred_at = moment
    if kind == "return" and not original:
        bad("original_external_id", "a return must name its purchase")
    if kind == "purchase" and original:
        bad("original_external_id", "only returns name an original purchase")
    if errors:
        return None, errors
    return ImportRow(
        line, external_id, member, kind, amount, occurred_at, channel, store, original
    ), []


def _reason(exc: ValidationError) -> str:
    return " ".join(exc.messages).rstrip(".")


def parse_occurred_at(text: str) -> datetime:
    """ISO 8601. A date alone means midnight in the programme's time zone; a time
    without an offset is read in that zone too."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.min)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            {"occurred_at": f"{text!r} is not an ISO 8601 date or time"}
        ) from None
    return timezone.make_aware(moment) if moment.tzinfo is None else moment


# The admin's import and export (django-import-export)


class TransactionCSV(base_formats.CSV):
    """The admin's import format: it hands the uploaded bytes, unread, to
    TransactionResource, which reads them with read_transactions like the command.
    tablib's reader would skip blank lines (shifting every line number after them) and
    fail on the whole file at a cell over 128 KB, a byte that is not UTF-8 or a row
    longer than the header, naming none of them."""

    def is_binary(self):
        return True  # the library then stores and reads back bytes, not decoded text

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        return UploadedCSV(in_stream)


class UploadedCSV(tablib.Dataset):
    """A CSV file as uploaded, for TransactionResource.import_data."""

    def __init__(self, data):
        super().__init__()
        self.raw = data if isinstance(data, bytes) else data.encode()

    def __bool__(self):
        return bool(self.raw.strip())  # the library refuses an empty upload


class TransactionResource(FormulaSafeResource):
    """Exports transactions in the import format; imports go through
    `import_transactions`, never through the library's row-by-row save."""

    member = fields.Field(attribute="member__external_id", column_name="member")
    original_external_id = fields.Field(
        attribute="original__external_id", column_name="original_external_id"
    )

    class Meta:
        model = Transaction
        fields = COLUMNS
        export_order = COLUMNS

    def get_queryset(self):
        return super().get_queryset().select_related("member", "original")

    def import_data(self, dataset, dry_run=False, raise_errors=False, **kwargs) -> Result:
        # The file as uploaded (TransactionCSV), or any other dataset written back as CSV.
        data = dataset.raw if isinstance(dataset, UploadedCSV) else dataset.export("csv").encode()
        rows, errors = read_transactions(io.BytesIO(data))
        shown = []
        report = import_transactions(_first(rows, shown), errors=errors, dry_run=dry_run)
        result = Result()
        result.diff_headers = list(COLUMNS)
        result.total_rows = report.rows
        result.report = report
        by_line = defaultdict(lambda: defaultdict(list))
        for error in report.errors:
            by_line[error.line][error.column].append(error.reason)
        cells = _cells_at(data, by_line.keys()) if by_line else {}
        for line, reasons in sorted(by_line.items()):
            result.append_invalid_row(line, cells.get(line, {}), ValidationError(dict(reasons)))
        if not report.errors:
            result.totals[RowResult.IMPORT_TYPE_NEW] = report.new
            result.totals[RowResult.IMPORT_TYPE_SKIP] = report.skipped
            for row in shown:
                preview = RowResult()
                preview.import_type = (
                    RowResult.IMPORT_TYPE_SKIP
                    if row.line in report.skipped_lines
                    else RowResult.IMPORT_TYPE_NEW
                )
                preview.diff = [
                    row.external_id,
                    row.member,
                    row.kind,
                    str(row.amount),
                    row.occurred_at.isoformat(),
                    row.channel,
                    row.store,
                    row.original_external_id,
                ]
                result.append_row_result(preview)
        return result


def _first(rows, shown: list) -> Iterator[ImportRow]:
    """The rows, keeping the first PREVIEW_ROWS of them in `shown`."""
    for row in rows:
        if len(shown) < PREVIEW_ROWS:
            shown.append(row)
        yield row


def _cells_at(data: bytes, lines) -> dict[int, dict]:
    """The cells of the rows that start on these lines, by column, as a page can show
    them (bytes that are not UTF-8 replaced, long cells cut)."""
    records = _records(csv.reader(_text(io.BytesIO(data))), [])
    header = [_column(name) for name in next(records, (1, []))[1]]
    return {
        line: {
            name: cell.encode(errors="surrogateescape").decode(errors="replace")[:100]
            for name, cell in zip(header, cells, strict=False)
        }
        for line, cells in records
        if line in lines
    }
