"""Days of the programme's calendar (TIME_ZONE) as instants."""

from datetime import date, datetime, time, timedelta

from django.utils import timezone

# The most days staff may type for a period, a delay or a reminder: ten years. More is
# a typing error, and dates that far away cannot be computed.
MAX_DAYS = 3650

# How far ahead of now a moment staff, tills and files give may be (a purchase, a
# member's joining or last purchase): a clock running a little fast is fine, a year
# typed wrong (which would stop a degradation clock) is not.
AT_MOST_AHEAD = timedelta(days=1)


def ten_years_after(day: date) -> date:
    """The same day ten calendar years on (29 February on the 28th): the latest date
    staff may choose ahead, a start or a preview's date. More is a typing error."""
    try:
        return day.replace(year=day.year + 10)
    except ValueError:
        return day.replace(year=day.year + 10, day=28)


def latest_allowed(now=None) -> datetime:
    """The latest moment a purchase, a joining or a last purchase may be given at."""
    return (now or timezone.now()) + AT_MOST_AHEAD


def start_of(day: date) -> datetime:
    """The first moment of a day in the programme's time zone: its midnight, or where
    the clocks go forward at midnight (America/Havana), the first moment that exists;
    where they go back, the first of the two midnights."""
    return timezone.make_aware(datetime.combine(day, time.min))


def day_ending_at(moment: datetime) -> date:
    """The day that ends at `moment` (end_of's inverse): a freeze's last day, the day a
    drop due then is told."""
    return timezone.localdate(moment - timedelta(microseconds=1))


def end_of(day: date) -> datetime:
    """The end of a day in the programme's time zone (the next day's start), whatever
    the offset that night: correct across daylight-saving changes."""
    return start_of(day + timedelta(days=1))
