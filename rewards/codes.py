"""Voucher codes (W5): unguessable, not enumerable, and read out loud without mistakes.

16 characters drawn by `secrets` from 24 that no font confuses with another: no 0 O D Q,
1 I L, 2 Z (2 kept), 5 S (5 kept), 6 G (6 kept), 8 B (8 kept), U V (V kept). That is
16 x log2(24) = 73.4 bits: with ten million vouchers alive, a guess finds one with a
chance of 1 in 10^15, and a key at the API's whole rate (1,200 a minute) would need
about two million years, on average, to hit one. Codes are stored and given by the API without
separators, shown to people in groups of four (`HK7M-2PXC-...`), and read back
forgiving what people type: lower case, dashes and spaces (any: an en dash or a
non-breaking space pasted from a message too), and the dropped half of a look-alike
pair (S for 5, Z for 2, G for 6, B for 8, U for V)."""

import secrets
import unicodedata

ALPHABET = "23456789ACEFHJKMNPRTVWXY"
LENGTH = 16
GROUP = 4
# Characters never in a code because each looks like another character.
LOOK_ALIKES = "01ODQILZSGBU"
# What someone typing a code may give for one of its characters.
_TYPED = str.maketrans({"S": "5", "Z": "2", "G": "6", "B": "8", "U": "V"})


def _separator(char: str) -> bool:
    """A space, a dash or a minus sign, or an invisible character a paste brings along
    (a zero-width space, a soft hyphen: Unicode's format characters)."""
    return char.isspace() or unicodedata.category(char) in ("Pd", "Cf") or char == "\u2212"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalized(text: str) -> str:
    """A code as typed (`hk7m-2pxc ...`) in the form it is stored in."""
    kept = "".join(char for char in str(text).upper() if not _separator(char))
    return kept.translate(_TYPED)


def is_code(text: str) -> bool:
    """Whether a normalized text could be a code at all (else nothing to look up)."""
    return len(text) == LENGTH and all(char in ALPHABET for char in text)


def shown(code: str) -> str:
    """A code for people: groups of four, `HK7M-2PXC-9RTA-4WNE`."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def masked(code: str) -> str:
    """A code for staff who may not use it (a valid one is money at a till): its last
    group only, to match it with the customer's, `••••-••••-••••-4WNE`."""
    hidden = "\u2022" * GROUP
    return "-".join([hidden] * (LENGTH // GROUP - 1) + [code[-GROUP:]])
