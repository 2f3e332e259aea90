"""Ids that tills, web shops, files and staff send: customer codes and the ids of
transactions, redemptions and voucher uses. Text that looks the same is the same id:
"Café-1" typed with a composed é (U+00E9) or with e and a combining accent (U+0065
U+0301, as a Mac or a web form may send it) is one code, not two accounts; a purchase
sent again in the other form is the same purchase (P8). Ids are kept and compared in
Unicode's composed form (NFC), read so wherever they come in (rules.md, Customer codes).
Compatibility forms are not folded (a full-width "Ｍ" looks different), nor is case."""

import re
import unicodedata
from collections.abc import Callable

from django.core.exceptions import ValidationError

from core.exports import unescape_formula
from core.staff_input import invisible_in


def canonical_id(text: str) -> str:
    """`text` in Unicode's composed form (NFC). ASCII text, nearly every id, is
    returned as it is, checked at C speed: an import of a million rows pays nothing."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def readable_id(external_id: str, *, field: str = "") -> None:
    """A validator: an id reads as one id wherever it comes in. It holds no invisible
    character (a zero-width space, a soft hyphen): "R-1" and "R-1" with one look the
    same, and the second would be made again, a second redemption or use (P8). Nor
    does it start as an export writes a cell a spreadsheet would run (quoted_start).
    Refused as the `field`'s when given. Customer codes say so in their own words
    (members.models.addressable_code)."""
    error = None
    if hidden := invisible_in(external_id):
        error = ValidationError(
            f"An id cannot hold an invisible character ({hidden}): it would look like another id.",
            code="invisible",
        )
    elif quoted_start(external_id):
        error = ValidationError(quoted_start_refused("An id"), code="quoted")
    if error:
        raise ValidationError({field: error}) if field else error


def quoted_start_refused(what: str) -> str:
    """Why `what` (an id, a customer code) cannot start as quoted_start says."""
    return (
        f"{what} cannot start with a quote (') before =, +, - or @: the exports write that "
        "start to keep a spreadsheet from running the cell, and every import reads the "
        "quote away."
    )


def quoted_start(text: str) -> bool:
    """Whether an import would read `text` as another (core.exports.unescape_formula)."""
    return unescape_formula(text) != text


def renamer(renamed: dict[str, str]) -> Callable[[str], str]:
    """A function that renames these ids (old: new) in a text the programme wrote
    ("Merged M-OLD into this member"), each whole: never inside a longer id ("M-1" is
    not the start of "M-10", nor the end of "XM-1"), as letters, digits, "_" and "-"
    go on an id."""
    pattern = re.compile(
        r"(?<![\w-])(?:"
        + "|".join(re.escape(old) for old in sorted(renamed, key=len, reverse=True))
        + r")(?![\w-])"
    )
    return lambda text: pattern.sub(lambda found: renamed[found.group()], text)
