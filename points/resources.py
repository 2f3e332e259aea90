"""The transaction CSV contract (DESIGN.md): reading a file into checked rows.

    external_id,member,kind,amount,occurred_at,channel,store,original_external_id

Each row is checked on its own here (format, kinds, amounts, dates); the checks that
need the database or the other rows (members, duplicates, originals, what is left to
return) are made by `points.services.import_transactions`."""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from points.models import Channel
from points.services import clean_amount

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
class ImportRow:
    line: int
    external_id: str
    member: str
    kind: str
    amount: Decimal
    occurred_at: datetime
    channel: str
    store: str
    original_external_id: str


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self):
        return f"line {self.line}, {self.column}: {self.reason}"


def read_transactions(stream) -> tuple[list[ImportRow], list[RowError]]:
    """Read a CSV file (bytes or text; UTF-8, a BOM accepted). Returns the good rows
    and an error for every bad cell, with its line number (the header is line 1)."""
    if isinstance(stream, io.TextIOBase):
        text = stream
    else:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    header = [name.strip().lstrip("\ufeff") for name in reader.fieldnames or []]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        return [], [RowError(1, column, "missing column") for column in missing]
    reader.fieldnames = header
    rows, errors = [], []
    try:
        for line, raw in enumerate(reader, start=2):
            row, row_errors = parse_row(line, raw)
            if row_errors:
                errors += row_errors
            else:
                rows.append(row)
    except UnicodeDecodeError:
        errors.append(RowError(reader.line_num + 1, "file", "not UTF-8 text"))
    return rows, errors


def parse_row(line: int, raw: dict) -> tuple[ImportRow | None, list[RowError]]:
    cells = {column: (raw.get(column) or "").strip() for column in COLUMNS}
    errors = []

    def bad(column, reason):
        errors.append(RowError(line, column, reason))

    if not cells["external_id"]:
        bad("external_id", "required")
    elif len(cells["external_id"]) > 100:
        bad("external_id", "longer than 100 characters")
    if not cells["member"]:
        bad("member", "required")
    if cells["kind"] not in KINDS:
        bad("kind", f"unknown kind {cells['kind']!r}: purchase or return")
    amount = occurred_at = None
    try:
        amount = clean_amount(cells["amount"])
    except ValidationError as exc:
        bad("amount", " ".join(exc.messages))
    try:
        occurred_at = parse_occurred_at(cells["occurred_at"])
    except ValueError:
        bad("occurred_at", f"{cells['occurred_at']!r} is not an ISO 8601 date or time")
    channel = cells["channel"] or Channel.IMPORT
    if channel not in CHANNELS:
        bad("channel", f"unknown channel {channel!r}")
    if cells["kind"] == "return" and not cells["original_external_id"]:
        bad("original_external_id", "a return must name its purchase")
    if cells["kind"] == "purchase" and cells["original_external_id"]:
        bad("original_external_id", "only returns name an original purchase")
    if len(cells["store"]) > 50:
        bad("store", "longer than 50 characters")
    if errors:
        return None, errors
    return (
        ImportRow(
            line=line,
            external_id=cells["external_id"],
            member=cells["member"],
            kind=cells["kind"],
            amount=amount,
            occurred_at=occurred_at,
            channel=channel,
            store=cells["store"],
            original_external_id=cells["original_external_id"],
        ),
        [],
    )


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
