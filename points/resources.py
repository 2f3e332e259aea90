"""The transaction CSV contract (DESIGN.md): reading a file into checked rows.

    external_id,member,kind,amount,occurred_at,channel,store,original_external_id

Each row is checked on its own here (format, kinds, amounts, dates); the checks that
need the database or the other rows (members, duplicates, originals, what is left to
return) are made by `points.services.import_transactions`."""

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from operator import itemgetter

from django.core.exceptions import ValidationError
from django.utils import timezone
from import_export import fields
from import_export.results import Result, RowResult

from core.exports import FormulaSafeResource
from points.models import Channel, Transaction
from points.services import PREVIEW_ROWS, ImportRow, clean_amount, import_transactions

COLUMNS = (
    "external_id",
    "member",
    "kind",
    "amount",
    "occurred_at",
    "channel",
    "store",
    "original_external_id",
)
KINDS = ("purchase", "return")
CHANNELS = frozenset(Channel.values)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self):
        return f"line {self.line}, {self.column}: {self.reason}"


def read_transactions(stream) -> tuple[Iterator[ImportRow], list[RowError]]:
    """Read a CSV file (bytes or text; UTF-8, a BOM accepted). Returns the good rows,
    read as they are iterated so that a file of any size is never held whole, and the
    list of errors, which fills as they are read: every bad cell, with its line number
    (the header is line 1)."""
    if isinstance(stream, io.TextIOBase):
        text = stream
    else:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = [_column(name) for name in next(reader, [])]
    except UnicodeDecodeError:
        return iter(()), [RowError(1, "file", "not UTF-8 text")]
    errors = header_errors(header)
    return iter(()) if errors else _utf8_rows(reader, header, errors), errors


def _utf8_rows(reader, header, errors: list) -> Iterator[ImportRow]:
    # The cells of COLUMNS by position, as csv.DictReader would find them (the last of
    # a repeated name; missing cells empty; blank lines skipped), without a dict a row.
    position = {name: i for i, name in enumerate(header)}
    cells = itemgetter(*(position[column] for column in COLUMNS))
    width = len(header)
    records = (
        cells(row if len(row) >= width else row + [""] * (width - len(row)))
        for row in reader
        if row
    )
    try:
        yield from iter_rows(records, errors)
    except UnicodeDecodeError:
        errors[:] = [RowError(reader.line_num + 1, "file", "not UTF-8 text")]


def parse_table(header, records) -> tuple[list[ImportRow], list[RowError]]:
    """Check a header and its records (dicts by column name, from line 2 on)."""
    errors = header_errors([_column(name) for name in header])
    if errors:
        return [], errors
    records = ({_column(name): value for name, value in raw.items()} for raw in records)
    return list(iter_rows((tuple(raw.get(c) for c in COLUMNS) for raw in records), errors)), errors


def _column(name) -> str:
    return (name or "").strip().lstrip("\ufeff")


def header_errors(header) -> list[RowError]:
    return [RowError(1, column, "missing column") for column in COLUMNS if column not in header]


def iter_rows(records, errors: list) -> Iterator[ImportRow]:
    """The good rows of records (the cells of COLUMNS, in order, from line 2 on); the
    errors of the bad ones are added to `errors`."""
    for line, cells in enumerate(records, start=2):
        row, row_errors = parse_row(line, cells)
        if row_errors:
            errors += row_errors
        else:
            yield row


def parse_row(line: int, cells) -> tuple[ImportRow | None, list[RowError]]:
    external_id, member, kind, amount, occurred_at, channel, store, original = (
        (cell or "").strip() for cell in cells
    )
    errors = []

    def bad(column, reason):
        errors.append(RowError(line, column, reason))

    if not external_id:
        bad("external_id", "required")
    elif len(external_id) > 100:
        bad("external_id", "longer than 100 characters")
    if not member:
        bad("member", "required")
    if kind not in KINDS:
        bad("kind", f"unknown kind {kind!r}: purchase or return")
    try:
        amount = clean_amount(amount)
    except ValidationError as exc:
        bad("amount", " ".join(exc.messages))
    try:
        occurred_at = parse_occurred_at(occurred_at)
    except ValueError:
        bad("occurred_at", f"{occurred_at!r} is not an ISO 8601 date or time")
    channel = channel or Channel.IMPORT
    if channel not in CHANNELS:
        bad("channel", f"unknown channel {channel!r}")
    if kind == "return" and not original:
        bad("original_external_id", "a return must name its purchase")
    if kind == "purchase" and original:
        bad("original_external_id", "only returns name an original purchase")
    if len(store) > 50:
        bad("store", "longer than 50 characters")
    if errors:
        return None, errors
    return ImportRow(
        line, external_id, member, kind, amount, occurred_at, channel, store, original
    ), []


def parse_occurred_at(text: str) -> datetime:
    """ISO 8601. A date alone means midnight in the programme's time zone; a time
    without an offset is read in that zone too."""
    if not text:
        raise ValueError("empty")
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), time.min)
    else:
        moment = datetime.fromisoformat(text)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


# The admin's import and export (django-import-export)


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
        records = dataset.dict
        rows, errors = parse_table(dataset.headers or [], records)
        report = import_transactions(rows, errors=errors, dry_run=dry_run)
        result = Result()
        result.diff_headers = list(COLUMNS)
        result.total_rows = report.rows
        result.report = report
        by_line = defaultdict(lambda: defaultdict(list))
        for error in report.errors:
            by_line[error.line][error.column].append(error.reason)
        for line, reasons in sorted(by_line.items()):
            raw = records[line - 2] if 2 <= line < len(records) + 2 else {}
            result.append_invalid_row(line, raw, ValidationError(dict(reasons)))
        if not report.errors:
            result.totals[RowResult.IMPORT_TYPE_NEW] = report.new
            result.totals[RowResult.IMPORT_TYPE_SKIP] = report.skipped
            for row in rows[:PREVIEW_ROWS]:
                preview = RowResult()
                preview.import_type = (
                    RowResult.IMPORT_TYPE_SKIP
                    if row.line in report.skipped_lines
                    else RowResult.IMPORT_TYPE_NEW
                )
                preview.diff = [str(records[row.line - 2].get(c) or "") for c in COLUMNS]
                result.append_row_result(preview)
        return result
