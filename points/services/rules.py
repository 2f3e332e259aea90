"""The rules of points as pure functions, read top to bottom: what a purchase earns
(P2, P3), what a return takes back (P4), and what a transaction may be (amounts,
times, references). The services and the import apply them; nothing here reads or
writes the database."""

import re
from datetime import UTC, datetime, time
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.days import latest_allowed
from core.ids import readable_id
from core.words import ELLIPSIS, shortened
from points.models import Channel, Transaction


def points_per_unit(earn_rate: Decimal, tier_multiplier: Decimal, campaign_multipliers) -> Decimal:
    """P2's points per currency unit: earn rate x tier multiplier x campaign
    multipliers, exact (no rounding before the floor of purchase_points)."""
    rate = _EXACT.multiply(earn_rate, tier_multiplier)
    for multiplier in campaign_multipliers:
        rate = _EXACT.multiply(rate, multiplier)
    return rate


def purchase_points(amount: Decimal, rate: Decimal) -> int:
    """P2: floor(amount x points_per_unit(...)), whole points (int() is the floor:
    neither is ever negative)."""
    return int(_EXACT.multiply(amount, rate))


# Wide enough for any amount times any rates the models allow: products are exact.
_EXACT = Context(prec=200, traps=[Inexact])

# The most one purchase earns: what the largest purchase (MAX_TRANSACTION_AMOUNT, 100,000
# by default) earns at the highest earn rate (100) and tier multiplier (x100). Only
# stacked campaigns go past it, and x100 campaigns past what the ledger's columns hold;
# a billion a receipt keeps every balance and total billions of receipts away from it.
MAX_PURCHASE_POINTS = 1_000_000_000


def check_purchase_points(points: int, *, amount: Decimal, earn_rate: Decimal, reason: str):
    """P2's bound: a purchase that would earn more than MAX_PURCHASE_POINTS is refused,
    saying what multiplied its points (`reason`: the tier and campaigns)."""
    if points > MAX_PURCHASE_POINTS:
        raise ValidationError(
            {
                "amount": f"A purchase earns at most {MAX_PURCHASE_POINTS:,} points: this one "
                f"would earn {points:,} ({amount} at {earn_rate.normalize():f} points per unit, "
                f"{reason}). Ask a marketer to check the earn rate, the tiers' multipliers and "
                "the campaigns."
            }
        )


def return_points(
    *,
    awarded: int,
    reversed_before: int,
    amount: Decimal,
    returned_before: Decimal,
    purchase_amount: Decimal,
) -> int:
    """P4: points a return takes back, in proportion, never more than were awarded.

    The return that completes the purchase takes back all that is left, so a purchase
    returned in parts ends at zero whatever the rounding of each part.
    """
    left = awarded - reversed_before
    if amount + returned_before >= purchase_amount:
        return left
    share = (Decimal(awarded) * amount / purchase_amount).quantize(1, rounding=ROUND_HALF_UP)
    return min(int(share), left)


def check_receives(member, *, points: int | None = None, field: str = "member") -> None:
    """An account whose customer was erased at their request receives no new points,
    earned or given: they could never be used, and would stand in the outstanding
    points for ever. Taking points back (a return of a purchase it made, `points` below
    zero: a balance written off) stays possible. `field` is what the refusal names."""
    if member.erased_at and (points is None or points > 0):
        raise ValidationError(
            {
                field: f"{member.external_id} was erased at the customer's request: it "
                "receives no more points, which could never be used."
            }
        )


def check_spends(member, *, refused: str) -> None:
    """Nor are an erased account's points ever spent: not redeemed, nor moved by a merge
    to an account that would spend them. `refused`: what was not done, for the message."""
    if member.erased_at:
        raise ValidationError(
            f"{member.external_id} was erased at the customer's request: its points can "
            f"never be used, and {refused}."
        )


def multiplier_label(name: str, multiplier: Decimal) -> str:
    return f"{name} x{multiplier.normalize():f}"


def rates_reason(factors: list[tuple[str, Decimal]], limit: int) -> str:
    """The reason of a purchase's ledger line: each factor of its points by name and
    multiplier ("Purchase points x10, Gold x2, Double points x2"), within `limit`
    characters (the ledger's reason column). When the names are too long together (a
    campaign's name has up to 100 characters, and campaigns stack), the longest are
    shortened alike, each ending with an ellipsis, and every multiplier stays, so that
    an agent's sum still comes out (X1). A list that no shortening fits (dozens of
    campaigns at once) is cut with an ellipsis at its end."""
    text = ", ".join(multiplier_label(name, multiplier) for name, multiplier in factors)
    if len(text) <= limit:
        return text
    names = [name for name, _ in factors]
    room = limit - (len(text) - sum(map(len, names)))

    def width(cap: int) -> int:  # the names' length once cut to `cap`, ellipsis included
        return sum(len(name) if len(name) <= cap else cap + len(ELLIPSIS) for name in names)

    cap = max(map(len, names))
    while cap > 0 and width(cap) > room:
        cap -= 1
    if cap == 0:
        return shortened(text, limit)
    return ", ".join(
        multiplier_label(name if len(name) <= cap else name[:cap] + ELLIPSIS, multiplier)
        for name, multiplier in factors
    )


class TransactionLimits(NamedTuple):
    """What a purchase, return or action may be, read once per call (or per file)."""

    max_amount: Decimal
    earliest: datetime
    latest: datetime


def transaction_limits(now=None) -> TransactionLimits:
    """At most MAX_TRANSACTION_AMOUNT, dated from the programme's start (PROGRAMME_START,
    midnight in TIME_ZONE) to a day after now: a till's clock may run a little ahead, a
    typo of a year may not."""
    start = datetime.combine(settings.PROGRAMME_START, time.min)
    earliest = timezone.make_aware(start, timezone.get_default_timezone()).astimezone(UTC)
    latest = latest_allowed(now)
    return TransactionLimits(settings.MAX_TRANSACTION_AMOUNT, earliest, latest)


_PLAIN_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")  # 120, 120.5, 120.50


_SIGNED_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # negative or too precise: said so


_ZERO = Decimal(0)


def clean_amount(amount, limits: TransactionLimits | None = None) -> Decimal:
    """A money amount, positive, at most MAX_TRANSACTION_AMOUNT. Text is a plain decimal:
    ASCII digits, and a point with one or two decimals; no sign, exponent, separator,
    space, or digits of another script (Python's Decimal() takes all of those). A
    Decimal or int is taken by its value; a float is refused, not rounded. The services
    and the CSV import (which passes the limits it read once for the file) share it."""
    if isinstance(amount, str) and _PLAIN_AMOUNT.fullmatch(amount):
        value = Decimal(amount)
    else:
        value = _amount_value(amount)
    if value <= _ZERO:
        raise ValidationError({"amount": f"The amount must be positive, not {amount}."})
    limit = limits.max_amount if limits else settings.MAX_TRANSACTION_AMOUNT
    if value > limit:
        raise ValidationError(
            {"amount": f"{amount} is more than the {limit:,} allowed in one transaction."}
        )
    return value


def _amount_value(amount) -> Decimal:
    """The value of an amount that is not plain decimal text, or why it is no amount."""
    if isinstance(amount, float):
        raise ValidationError({"amount": "Give the amount as a decimal, not a float."})
    if isinstance(amount, str) and _SIGNED_DECIMAL.fullmatch(amount):
        value = Decimal(amount)
    elif isinstance(amount, Decimal | int) and not isinstance(amount, bool):
        value = Decimal(amount)
    else:
        value = None
    if value is None or not value.is_finite():
        raise ValidationError(
            {
                "amount": f"{amount!r} is not an amount (write digits and at most two "
                "decimals after a point, like 1250.50)."
            }
        )
    # Text as written ("12.000" has three decimals); a number by its value (12.000 is 12)
    written = value.as_tuple().exponent if isinstance(amount, str) else _exponent(value)
    if value > 0 and written < -2:
        raise ValidationError({"amount": f"{amount} has more than two decimals."})
    return value


def _exponent(value: Decimal) -> int:
    """The exponent of a finite Decimal's value, its trailing zeros dropped: 12.000 is
    12 (0), 12.50 is 12.5 (-1). Not Decimal.normalize(), which rounds to the context's
    28 digits."""
    _, digits, exponent = value.as_tuple()
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return exponent + trailing


def check_occurred_at(occurred_at, limits: TransactionLimits | None = None, *, shown="") -> None:
    """The time of a purchase, return or action: aware, and within transaction_limits.
    record_purchase, record_return, award_action and the CSV import all check it here;
    `shown` is the time as the caller wrote it, for the message."""
    _, earliest, latest = limits or transaction_limits()
    try:
        if earliest <= occurred_at <= latest:
            return
    except TypeError:  # naive (or no time at all): it cannot be placed
        raise ValidationError({"occurred_at": "The time needs a time zone."}) from None
    shown = shown or occurred_at.isoformat()
    if occurred_at < earliest:
        start = settings.PROGRAMME_START
        began = f"{start.day} {start:%B %Y}"
        raise ValidationError({"occurred_at": f"{shown} is before the programme began ({began})."})
    raise ValidationError({"occurred_at": f"{shown} is more than a day in the future."})


_CHANNELS = frozenset(Channel.values)
_ID_LENGTH = Transaction._meta.get_field("external_id").max_length
_STORE_LENGTH = Transaction._meta.get_field("store").max_length


def check_transaction(
    *, external_id, occurred_at, channel, store="", amount=None, limits=None, shown_time=""
) -> Decimal | None:
    """What any transaction may be, from a till, the API or a file: an id of 1 to 100
    characters, none of them invisible (a zero-width space), a plain amount within the
    maximum (clean_amount), a time within the programme (check_occurred_at), a known
    channel, a store of at most 50 characters.
    One ValidationError names every field that is wrong. Returns the amount, if any."""
    errors, value = {}, None
    if not external_id or len(external_id) > _ID_LENGTH:
        errors["external_id"] = f"an id of 1 to {_ID_LENGTH} characters is required"
    else:
        try:
            readable_id(external_id)  # it would repeat a visible id (P8)
        except ValidationError as exc:
            errors["external_id"] = exc.message
    if amount is not None:
        try:
            value = clean_amount(amount, limits)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    try:
        check_occurred_at(occurred_at, limits, shown=shown_time)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if channel not in _CHANNELS:
        errors["channel"] = f"unknown channel {channel!r}: {', '.join(Channel.values)}"
    if len(store or "") > _STORE_LENGTH:
        errors["store"] = f"at most {_STORE_LENGTH} characters, not {len(store):,}"
    if errors:
        raise ValidationError(errors)
    return value


def transaction_fields(*, kind, external_id, occurred_at, channel, store="", amount) -> dict:
    """The fields of a purchase or return once check_transaction has passed them."""
    amount = check_transaction(
        external_id=external_id,
        occurred_at=occurred_at,
        channel=channel,
        amount=amount,
        store=store,
    )
    return dict(
        external_id=external_id,
        kind=kind,
        amount=amount,
        occurred_at=occurred_at,
        channel=channel,
        store=store,
    )
