"""Options of the preview commands, read as argparse types: a wrong one is refused
with a message naming it ("argument --date: ..."), never a traceback."""

from argparse import ArgumentTypeError
from datetime import date, datetime

from django.conf import settings
from django.utils import timezone

from core.days import ten_years_after


def a_day(text: str) -> date:
    """A date like 2026-03-31, from the programme's first day to ten years ahead."""
    try:
        value = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a date like 2026-03-31") from None
    if value < settings.PROGRAMME_START:
        raise ArgumentTypeError(f"{text} is before the programme began")
    if value > ten_years_after(timezone.localdate()):
        raise ArgumentTypeError(f"{text} is more than ten years ahead")
    return value


# The most a count option takes (members listed): more than any programme has.
MOST = 10_000_000


def whole_number(text: str) -> int:
    """A whole number, 0 to MOST, in ASCII digits ("²" is a digit to Python, not to int)."""
    if not (text.isascii() and text.isdigit()):
        raise ArgumentTypeError(f"{text!r} is not a whole number, 0 or more")
    if int(text) > MOST:
        raise ArgumentTypeError(f"{text} is more than {MOST:,}")
    return int(text)
