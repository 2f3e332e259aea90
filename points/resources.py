"""The transaction CSV contract (DESIGN.md): reading a file into checked rows.

    external_id,member,kind,amount,occurred_at,channel,store,original_external_id

Each row is checked on its own here (format, kinds, amounts, dates); the checks that
need the database or the other rows (members, duplicates, originals, what is left to
return) are made by `points.services.importing`. Both doors, the command and
the admin's import page, read files with read_transactions: a row is named by the
physical line it starts on, as a text editor numbers them."""

import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from operator import itemgetter

import tablib
from django.core.exceptions import ValidationError
from django.utils import timezone
from import_export import fields
from import_export.formats import base_formats
from import_export.results import Result, RowResult

from core.days import start_of
from core.exports import FormulaSafeResource
from core.ids import canonical_id
from core.models import ImportBatch
from points.csv_files import open_csv, parsed_rows
from points.csv_rows import COLUMNS, KINDS, ImportRow, RowError, naming
from points.models import Channel, Transaction
from points.services import PREVIEW_ROWS, batches, import_transactions
from points.services.batches import SHOWN_ERRORS
from points.services.rules import TransactionLimits, check_transaction, transaction_limits


def read_transactions(stream, *, now=None) -> tuple[Iterator[ImportRow], list[RowError]]:
    """Read a CSV file (bytes or text; UTF-8, a BOM accepted). Returns the good rows,
    read as they are iterated so that a file of any size is never held whole, and the
    list of errors, which fills as they are read: every bad row, with the physical line
    it starts on (blank lines and the lines inside quoted cells counted), whatever is in
    it."""
    records, _, header, errors = open_csv(stream, COLUMNS)
    if errors:
        return iter(()), errors
    return _rows(records, header, errors, transaction_limits(now)), errors


def _rows(records, header, errors: list, limits: TransactionLimits) -> Iterator[ImportRow]:
    """The good rows; the errors of the bad ones are added to `errors`."""
    # The cells of COLUMNS by position (each name once: open_csv refuses a name
    # twice), without a dict a row.
    position = {name: i for i, name in enumerate(header)}
    cells_of = itemgetter(*(position[column] for column in COLUMNS))
    yield from parsed_rows(
        records, header, errors, lambda line, cells: parse_row(line, cells_of(cells), limits)
    )


def parse_row(
    line: int, cells, limits: TransactionLimits
) -> tuple[ImportRow | None, list[RowError]]:
    external_id, member, kind, amount, occurred_at, channel, store, original = map(str.strip, cells)
    external_id, member, original = map(canonical_id, (external_id, member, original))
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
        return None, naming(errors, external_id, member)
    return ImportRow(
        line, external_id, member, kind, amount, occurred_at, channel, store, original
    ), []


def _reason(exc: ValidationError) -> str:
    return " ".join(exc.messages).rstrip(".")


def parse_occurred_at(text: str) -> datetime:
    """ISO 8601. A date alone means the start of that day in the programme's time zone
    (its midnight, or the first moment after a midnight the clocks skip); a time without
    an offset is read in that zone too, unless the clock change skips it or repeats it
    that night: which moment is meant is then unknown, and the offset asked."""
    if not text:
        raise ValidationError({"occurred_at": "required"})
    try:
        if len(text) == 10:
            return start_of(date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            {
                "occurred_at": f"{text!r} is not a date (2026-11-01) or a time "
                "(2026-11-01T10:00:00+01:00)"
            }
        ) from None
    if moment.tzinfo is not None:
        return moment
    zone = timezone.get_default_timezone()
    earlier, later = moment.replace(tzinfo=zone), moment.replace(tzinfo=zone, fold=1)
    if earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        why = "does not exist in {zone} (the clocks went forward that night)"
    elif earlier.utcoffset() != later.utcoffset():
        why = "happened twice in {zone} (the clocks went back that night)"
    else:
        return earlier
    raise ValidationError(
        {
            "occurred_at": f"{text!r} {why.format(zone=zone)}: give it with its offset "
            f"({_offset(earlier)} or {_offset(later)})"
        }
    )


def _offset(moment: datetime) -> str:
    minutes = int(moment.utcoffset().total_seconds() // 60)
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


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
        shown = []
        if dry_run:  # the preview
            rows, errors = read_transactions(io.BytesIO(data))
            report = import_transactions(_first(rows, shown), errors=errors, dry_run=True)
        else:  # Confirm: a batch in the Imports list, as an upload there makes
            report = batches.import_now(
                kind=ImportBatch.Kind.TRANSACTIONS,
                data=data,
                file_name=kwargs.get("file_name") or "transactions.csv",
                by=kwargs["user"],
            )
        result = Result()
        result.diff_headers = list(COLUMNS)
        result.total_rows = report.rows
        result.report = report
        by_line = defaultdict(lambda: defaultdict(list))
        for error in report.errors:
            by_line[error.line][error.column].append(error.reason)
        # The first errors on the page (its own list: admin/points/transaction/import.html):
        # a file wrong throughout would make it hundreds of megabytes. An upload under
        # Imports lists every error in a CSV.
        result.errors_shown = report.errors[:SHOWN_ERRORS]
        result.errors_not_shown = len(report.errors) - len(result.errors_shown)
        # The library's own record of the rows refused, which keeps its confirm button
        # away (the page shows the list, not the library's table of their cells).
        for line in sorted({error.line for error in result.errors_shown}):
            result.append_invalid_row(line, {}, ValidationError(dict(by_line[line])))
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
