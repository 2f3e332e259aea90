"""Words as staff and members read them: counts in messages and command output ("1
member", "2 members", "1,000 members", "0 members"), and texts the programme composes
made to fit their column."""

ELLIPSIS = "…"


def counted(n: int, noun: str, plural: str = "", *, signed: bool = False) -> str:
    """`n` with its noun, singular for exactly one; `plural` when adding an s is wrong;
    `signed`: with its sign, as points added or removed are ("+1 point", "-5 points")."""
    number = f"{n:+,}" if signed else f"{n:,}"
    return f"{number} {noun if abs(n) == 1 else plural or noun + 's'}"


def shortened(text: str, limit: int) -> str:
    """`text` within `limit` characters: whole when it fits, else cut and ended with an
    ellipsis, so that the reader sees it goes on. The one way a text the programme
    composes (a ledger line's reason, a status match carried over by a merge) is made
    to fit its column: never cut off mid-word without a sign."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
