"""Ids that tills, web shops, files and staff send: customer codes and the ids of
transactions, redemptions and voucher uses. Text that looks the same is the same id:
"Café-1" typed with a composed é (U+00E9) or with e and a combining accent (U+0065
U+0301, as a Mac or a web form may send it) is one code, not two accounts; a purchase
sent again in the other form is the same purchase (P8). Ids are kept and compared in
Unicode's composed form (NFC), read so wherever they come in (rules.md, Customer codes).
Compatibility forms are not folded (a full-width "Ｍ" looks different), nor is case."""

import unicodedata


def canonical_id(text: str) -> str:
    """`text` in Unicode's composed form (NFC). ASCII text, nearly every id, is
    returned as it is, checked at C speed: an import of a million rows pays nothing."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)
