"""Fields of the API that check input with the rules the services use (points.services.
rules): an amount or a time that is wrong on its own is a 400 naming the field."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from points.services.rules import check_occurred_at, clean_amount


@extend_schema_field({"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "example": "120.50"})
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


class MomentField(serializers.DateTimeField):
    """ISO 8601 with an offset, within the programme's dates."""

    default_error_messages = {
        "naive": "Give the time with its offset, like 2026-11-01T10:00:00+01:00."
    }

    def to_internal_value(self, value):
        if isinstance(value, str) and not _has_offset(value):
            self.fail("naive")
        moment = super().to_internal_value(value)
        try:
            check_occurred_at(moment, shown=value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return moment


def _has_offset(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return True  # not a time at all: DateTimeField says so
