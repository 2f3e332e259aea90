"""The transaction CSV contract's types (DESIGN.md), shared by the parser
(points.resources) and the import (points.services.importing):

    external_id,member,kind,amount,occurred_at,channel,store,original_external_id
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

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


class ImportRow(NamedTuple):
    """A checked CSV row. Back from the import's staging table it also carries the id
    its external_id was recorded under before this import, if any. A named tuple: a
    million of them are made from a million-row file."""

    line: int
    external_id: str
    member: str
    kind: str
    amount: Decimal
    occurred_at: datetime
    channel: str
    store: str
    original_external_id: str
    recorded_id: int | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A bad row: the file's physical line, the column (or "row", "file") and why."""

    line: int
    column: str
    reason: str

    def __str__(self):
        return f"line {self.line}, {self.column}: {self.reason}"
