"""What staff type into a service (a reason, a last day) or a setting (a number of
points or days), checked the same way everywhere: errors go into a dict by field, for
one ValidationError naming them all."""

import unicodedata
from datetime import date

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    BaseValidator,
    DecimalValidator,
    MaxValueValidator,
    MinValueValidator,
)
from django.db import models
from django.utils.deconstruct import deconstructible


def clean_reason(reason, errors: dict, *, missing: str, limit: int = 255) -> str:
    """The reason with its spaces tidied; `missing` when empty, or the limit when too long.
    Invisible characters alone are no reason: "" (where a reason may be left out)."""
    reason = " ".join((reason or "").split())
    if is_blank(reason):
        if missing:
            errors["reason"] = missing
        return ""
    elif len(reason) > limit:
        errors["reason"] = f"Keep the reason to {limit} characters (it has {len(reason)})."
    return reason


def is_blank(text: str) -> bool:
    """Nothing a reader can see: spaces, and invisible characters (a zero-width space,
    a byte order mark) that str.strip() keeps."""
    return all(char.isspace() or invisible(char) for char in text)


def invisible(char: str) -> bool:
    """A format or control character (Unicode Cf, Cc): a zero-width space, a soft
    hyphen, a byte order mark, a tab. A paste brings them; no reader sees them."""
    return unicodedata.category(char) in ("Cf", "Cc")


def invisible_in(text: str, allowed: str = "") -> str:
    """The first invisible character of an id, as a reader can act on it
    ("U+200B ZERO WIDTH SPACE, character 7"), or "" when there is none. Two ids that
    differ by one would look the same on screen: an id must not hold any. `allowed`:
    invisible characters that are kept (the joiners some scripts need)."""
    if text.isprintable():  # no Cf or Cc character is: a million ids checked at C speed
        return ""
    for i, char in enumerate(text):
        if invisible(char) and char not in allowed:
            name = unicodedata.name(char, "")  # control characters have none
            return f"U+{ord(char):04X}{' ' + name if name else ''}, character {i + 1}"
    return ""


def tidy_name(name: str | None) -> str | None:
    """A name as staff mean it: letters in Unicode's composed form ("Café" typed on a Mac
    is the same name), and one plain space between words (a non-breaking space pasted
    from a design tool made "Coffee voucher" a second, identical-looking name)."""
    return " ".join(unicodedata.normalize("NFC", name).split()) if name else name


def unreadable_name(name: str, what: str) -> str:
    """Why `name` cannot name a `what` (a tier, a reward, a campaign) on screen, or "": nothing a
    reader can see, or an invisible character that makes it look like another name. No
    name at all (left empty, or one its field refused as too long, which leaves the form's
    row without it) is the field's to say, in its own words: "" here, not a second
    message beside the field's."""
    if not name:
        return ""
    if is_blank(name):
        return f"Give the {what} a name people can read."
    if where := invisible_in(name):
        return (
            f"A {what}'s name cannot hold an invisible character ({where}): it would look "
            "like another name."
        )
    return ""


def check_last_day(
    until: date | None, errors: dict, *, earliest: date, latest: date, missing: str, too_late: str
) -> None:
    """A last day from `earliest` to `latest` (both included)."""
    if until is None or until < earliest:
        errors["until"] = missing
    elif until > latest:
        errors["until"] = too_late


class AtLeastOne(models.PositiveIntegerField):
    """A whole number staff type that must be 1 or more (days in a period, tiers per
    step, a goodwill limit): 0 and -1 get the same "at least 1", where a plain
    PositiveIntegerField's form would tell -1 "at least 0" and then refuse 0 too."""

    default_validators = [MinValueValidator(1)]

    def __init__(self, *args, too_few: str = "", **kwargs):
        # `too_few`: what 0 and -1 read instead of Django's "greater than or equal to 1",
        # where the field's upper bound says its range in words ("valid from 1 to ...")
        self.too_few = too_few
        super().__init__(*args, **kwargs)

    @property
    def validators(self):
        found = super().validators
        if not self.too_few:
            return found
        return [
            MinValueValidator(1, self.too_few) if type(v) is MinValueValidator else v for v in found
        ]

    def formfield(self, **kwargs):
        messages = {"min_value": self.too_few} if self.too_few else {}
        return super().formfield(**{"min_value": 1, "error_messages": messages, **kwargs})

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.too_few:
            kwargs["too_few"] = self.too_few
        return name, path, args, kwargs


@deconstructible(path="core.staff_input.AtMost")
class AtMost(MaxValueValidator):
    """A number staff type is at most `limit_value` (or what a function of the settings
    gives), said in words with the limit as staff read it: `message` formats {limit:,}.
    Being a MaxValueValidator, it stands in for the database's own range check, whose
    limit (2147483647) would be a second, meaningless message."""

    def __call__(self, value):
        limit = self.limit_value() if callable(self.limit_value) else self.limit_value
        if value > limit:
            raise ValidationError(self.message.format(limit=limit), code=self.code)


@deconstructible(path="core.staff_input.Above")
class Above(BaseValidator):
    """A number staff type is above `limit_value` (a multiplier above 0), said in the
    rule's words. Being a field's validator, its error stands beside the field; the
    database constraint that backs it would say it above the form, naming no field."""

    code = "min_value"

    def compare(self, a, b):
        return a <= b


class FiniteDecimalFormField(forms.DecimalField):
    """Django's, refusing "NaN", "sNaN" and "Infinity" as it reads them, not only when it
    validates: a page compares what was typed with what it showed first (whether the
    field changed), and comparing a signalling NaN raises an error."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not value.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return value


class BoundedDecimalField(models.DecimalField):
    """A decimal staff type with a bound in the rule's words (an AtMost among its
    validators): its form says the bound first, and not the column's digit count
    ("no more than 4 digits before the decimal point"), which says nothing to staff
    and which the bound keeps within. Its decimal places are still counted."""

    def formfield(self, **kwargs):
        field = super().formfield(**{"form_class": FiniteDecimalFormField, **kwargs})
        bounds = [v for v in self.validators if isinstance(v, AtMost)]
        field.validators = bounds + [
            DecimalValidator(None, v.decimal_places) if isinstance(v, DecimalValidator) else v
            for v in field.validators
        ]
        return field


def adjustment_limit() -> int:
    """The most points one adjustment may give (the setting MAX_ADJUSTMENT_POINTS, P6),
    read when a value is checked."""
    return settings.MAX_ADJUSTMENT_POINTS


def transaction_amount_limit():
    """The largest amount one purchase or return may have (the setting
    MAX_TRANSACTION_AMOUNT), read when a value is checked."""
    return settings.MAX_TRANSACTION_AMOUNT
