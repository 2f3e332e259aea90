"""Counts as staff read them in messages and command output: "1 member", "2 members",
"1,000 members", "0 members"."""


def counted(n: int, noun: str, plural: str = "") -> str:
    """`n` with its noun, singular for exactly one; `plural` when adding an s is wrong."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
