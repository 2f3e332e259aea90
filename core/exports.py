"""CSV exports that are safe to open in a spreadsheet."""

import csv
import re

from django.utils import timezone
from import_export import resources, widgets

# UTF-8 with a byte order mark: Excel on Windows reads a file without one in the
# computer's own code page, and "José Muñoz" shows as "JosÃ© MuÃ±oz". Every import reads
# the mark (and a file without it) alike.
SPREADSHEET_ENCODING = "utf-8-sig"

# A spreadsheet may run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# A number as the exports write them: points and amounts ("-12.50"). Not what Python
# also reads as one ("-Infinity", "+34600000001": a phone number a spreadsheet would
# turn into 3.46E+10).
PLAIN_NUMBER = re.compile(r"-\d+(\.\d+)?")


def escape_formula(value):
    """Prefix a text cell that a spreadsheet would read as a formula with a quote.
    Plain negative numbers ("-12.50") stay numbers. A cell that already starts with
    quotes before such a start gets one more, so that unescape_formula gives it back."""
    if not isinstance(value, str) or not value.lstrip("'").startswith(FORMULA_STARTS):
        return value
    return value if PLAIN_NUMBER.fullmatch(value) else "'" + value


def unescape_formula(cell: str) -> str:
    """A cell as it was before escape_formula: an export imported again names the same
    transactions ("+T-1001", exported as "'+T-1001")."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def spreadsheet_writer(stream):
    """A csv.writer on a text stream (a response, a StringIO) that starts with the byte
    order mark, as SPREADSHEET_ENCODING writes it once the text is UTF-8 encoded."""
    stream.write("\ufeff")
    return csv.writer(stream)


class MomentWidget(widgets.DateTimeWidget):
    """A moment as ISO 8601 on the programme's clock with its offset, to the
    microsecond it was recorded with: the library's default drops both, so the two
    02:30s of the night the clocks go back read alike, and a file exported and imported
    again was refused (the import asks the offset of such a time; a time cut to the
    second is another transaction's)."""

    def render(self, value, obj=None, **kwargs):
        return timezone.localtime(value).isoformat() if value else ""


class FormulaSafeResource(resources.ModelResource):
    """An export safe to open in a spreadsheet, its moments given exactly."""

    WIDGETS_MAP = resources.ModelResource.WIDGETS_MAP | {"DateTimeField": MomentWidget}

    def export_field(self, field, instance, **kwargs):
        return escape_formula(super().export_field(field, instance, **kwargs))
