"""Fields of the API that check input with the rules the services use (points.services.
rules): an amount or a time that is wrong on its own is a 400 naming the field."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from core.ids import canonical_id, readable_id
from points.services.rules import check_occurred_at, clean_amount


class IdField(serializers.CharField):
    """A customer code or the id of a transaction, redemption or use: read in Unicode's
    composed form (core.ids), then measured as it is kept (a few characters compose to
    two); one holding an invisible character is wrong on its own (core.ids.readable_id)."""

    def __init__(self, **kwargs):
        # A new customer code (Enrolment) brings its own, which says it in its words
        kwargs.setdefault("validators", [readable_id])
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return canonical_id(super().to_internal_value(data))


class AmountField(serializers.Field):
    """A decimal string ("120.50") or a JSON number read exactly; never a float."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | Decimal):
            self.fail("invalid")
        try:
            return clean_amount(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def to_representation(self, value):
        return f"{value:.2f}"

    default_error_messages = {"invalid": 'Give the amount as a decimal string, like "120.50".'}


class AmountScheme(OpenApiSerializerFieldExtension):
    """AmountField in the schema: what a request may give (a positive decimal string
    with at most two decimals, or a JSON number so written), what a response gives."""

    target_class = AmountField

    def map_serializer_field(self, auto_schema, direction):
        text = {"type": "string", "pattern": POSITIVE_AMOUNT, "example": "120.50"}
        if direction == "response":
            return text
        limit = settings.MAX_TRANSACTION_AMOUNT
        number = {"type": "number", "exclusiveMinimum": 0, "maximum": float(limit)}
        return {
            "oneOf": [text, {**number, "multipleOf": 0.01}],
            "description": f"A decimal string (or a JSON number, read exactly), above 0 and "
            f"at most {limit:,} (MAX_TRANSACTION_AMOUNT), with at most two decimals.",
        }


# Plain digits, a point and one or two decimals (points.services.rules.clean_amount), and
# not zero: "120", "120.5", "0.01".
POSITIVE_AMOUNT = r"^(0*[1-9][0-9]*(\.[0-9]{1,2})?|0+\.(0[1-9]|[1-9][0-9]?))$"


class MomentField(serializers.DateTimeField):
    """ISO 8601 with an offset, within the programme's dates."""

    default_error_messages = {
        "naive": "Give the time with its offset, like 2026-11-01T10:00:00+01:00.",
        # Python's parser takes digits of any script, and skips a NUL
        "unreadable": "Give the time in ISO 8601, in plain digits, like 2026-11-01T10:00:00+01:00.",
        "offset_seconds": "Give the offset in hours and minutes, like +01:00.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str) and not (value.isascii() and value.isprintable()):
            self.fail("unreadable")
        if isinstance(value, str):  # RFC 3339's "t" and "z" may be written in lower case
            value = value.upper()
        moment = super().to_internal_value(value)
        try:
            check_occurred_at(moment, shown=value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return moment

    def enforce_timezone(self, value):
        """Never give a time without an offset the programme's zone: whatever format
        the parser took (`2026-11-1T10:00`, `2026-11-01 10:00`), a time with no offset
        is refused."""
        if timezone.is_naive(value):
            self.fail("naive")
        if value.utcoffset().total_seconds() % 60:  # ISO 8601 has no seconds in an offset
            self.fail("offset_seconds")
        return super().enforce_timezone(value)


class MomentScheme(OpenApiSerializerFieldExtension):
    """MomentField in the schema, with the window a time must lie in (in words: a JSON
    schema has no bounds for a date-time)."""

    target_class = MomentField

    def map_serializer_field(self, auto_schema, direction):
        start = settings.PROGRAMME_START
        return {
            "type": "string",
            "format": "date-time",
            "example": "2026-11-01T10:00:00+01:00",
            "description": "ISO 8601 with its offset, from the programme's start "
            f"({start:%d %B %Y}, PROGRAMME_START) to a day after now.",
        }
