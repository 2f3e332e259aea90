"""The shapes of the API (DESIGN.md, Integration API): what a request may hold, checked
on its own (a 400 names the field), and what a response holds. Rules that need the
database stay in the services (a 422)."""

import functools
import inspect
from decimal import Decimal

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.settings import api_settings

from api.fields import AmountField, IdField, MomentField
from core.staff_input import invisible
from members.models import JOINERS, Member, addressable_code, readable_name
from points.models import Channel, LedgerEntry, Transaction
from rewards.models import Redemption, VoucherStatus


class Problem(serializers.Serializer):
    """application/problem+json (RFC 9457)."""

    class FieldError(serializers.Serializer):
        field = serializers.CharField(allow_null=True)
        message = serializers.CharField()

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = FieldError(many=True, required=False)


class Strict(serializers.Serializer):
    """A request body: a JSON object, and unknown fields are an error, not ignored; nor
    is a value of the wrong JSON type (DRF would take `"external_id": 12` as "12" and
    `"reward": "5"` as 5), nor text longer than its field as sent (DRF measures it
    trimmed)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        wrong_as_sent = {
            name: [message]
            for name, field in self.fields.items()
            if isinstance(data, dict) and (message := _wrong_as_sent(field, data.get(name)))
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = exc.detail
        else:
            errors = {}
        if unknown and isinstance(errors, dict):
            errors.update({name: ["Unknown field."] for name in unknown})
        if wrong_as_sent and isinstance(errors, dict):
            errors.update(wrong_as_sent)
        if errors:
            raise serializers.ValidationError(errors)
        return value


def _wrong_as_sent(field, value) -> str | None:
    """Why a value is not of the field's JSON type, or text longer than its maxLength
    as sent (DRF measures it once trimmed: the schema's maxLength is of what is sent)."""
    if isinstance(field, serializers.CharField) and isinstance(value, str):
        limit = field.max_length
        return (
            f"At most {limit} characters, not {len(value):,}."
            if limit and len(value) > limit
            else None
        )
    if isinstance(field, serializers.CharField) and isinstance(value, bool):
        return "Give text (a JSON string), not true or false."
    if isinstance(field, serializers.CharField) and isinstance(value, int | float | Decimal):
        return "Give text (a JSON string), not a number."
    if isinstance(field, serializers.IntegerField) and isinstance(value, str):
        return "Give a number, not text."
    if isinstance(field, serializers.IntegerField) and isinstance(value, Decimal | float):
        # 7.0 is the whole number 7, as JSON Schema (OpenAPI 3.1) reads it; 7.5 is not one
        number = Decimal(value)  # the parser's Decimal, or a float from another parser
        whole = number.is_finite() and number == number.to_integral_value()
        return None if whole else "Give a whole number, without a fraction."
    return None


@functools.cache
def _bound(serializer_class) -> serializers.Serializer:
    return serializer_class()


def rendered(serializer_class, instance) -> dict:
    """`serializer_class(instance).data`, by one serializer per class whose fields are
    bound once: binding them anew (deep copies) cost more than the rest of a request."""
    return _bound(serializer_class).to_representation(instance)


def checked(serializer_class, data) -> dict:
    """`serializer_class(data=data)`'s validated data, or its ValidationError as
    `is_valid(raise_exception=True)` raises it, by the serializer bound once. Checking
    keeps nothing on the serializer, so every request (and thread) shares it."""
    try:
        return _bound(serializer_class).run_validation(data)
    except serializers.ValidationError as exc:
        if isinstance(exc.detail, dict):
            raise
        raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.detail}) from None


class Tier(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    multiplier = serializers.DecimalField(max_digits=6, decimal_places=2)


class NextExpiry(serializers.Serializer):
    cutoff = serializers.DateField()
    points = serializers.IntegerField()


class MemberSummary(serializers.Serializer):
    external_id = serializers.CharField()
    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    lifetime = serializers.IntegerField()
    qualified_tier = Tier()
    effective_tier = Tier()
    next_tier = Tier(allow_null=True)
    points_to_next_tier = serializers.IntegerField(allow_null=True)
    degrades_on = serializers.DateField(allow_null=True)
    next_expiry = NextExpiry(allow_null=True)


class Enrolment(Strict):
    external_id = IdField(max_length=64, validators=[addressable_code])
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True, validators=[readable_name]
    )
    last_name = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True, validators=[readable_name]
    )
    # The model's checks (not ahead, not before 1900): input wrong on its own, a 400
    birth_date = serializers.DateField(
        required=False,
        default=None,
        allow_null=True,
        validators=Member._meta.get_field("birth_date").validators,
        help_text="A day from 1900 to today: a birthday-month campaign reads it.",
    )
    referred_by = IdField(
        max_length=64,
        required=False,
        default="",
        allow_blank=True,
        help_text="The customer code of the member who referred them: paid the referral "
        "points at this member's first purchase.",
    )


class TransactionRequest(Strict):
    external_id = IdField(max_length=100)
    member = IdField(max_length=64)
    kind = serializers.ChoiceField(choices=["purchase", "return"])
    amount = AmountField()
    occurred_at = MomentField()
    store = serializers.CharField(max_length=50, required=False, default="", allow_blank=True)
    original_external_id = IdField(max_length=100, required=False, default="", allow_blank=True)

    def validate(self, data):
        if data["kind"] == "return" and not data["original_external_id"]:
            raise serializers.ValidationError(
                {"original_external_id": "A return names its purchase."}
            )
        if data["kind"] == "purchase" and data["original_external_id"]:
            raise serializers.ValidationError(
                {"original_external_id": "Only returns name an original purchase."}
            )
        return data


class TransactionResult(serializers.Serializer):
    external_id = serializers.CharField()
    member = serializers.CharField()
    kind = serializers.ChoiceField(choices=Transaction.Kind.choices)
    amount = AmountField(allow_null=True)
    occurred_at = serializers.DateTimeField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    store = serializers.CharField()
    original_external_id = serializers.CharField(allow_null=True)
    points = serializers.IntegerField(help_text="What the transaction added (negative: a return).")
    summary = MemberSummary()


class ActionRequest(Strict):
    external_id = IdField(max_length=100)
    member = IdField(max_length=64)
    definition = serializers.CharField(max_length=50, help_text="The action's handle.")
    occurred_at = MomentField()


class LedgerEntryOut(serializers.Serializer):
    issued_at = serializers.DateTimeField()
    accrue_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices)
    points = serializers.IntegerField()
    # null when the entry has none; always in the entry, as the schema says (required)
    definition = serializers.CharField(source="definition.handle", allow_null=True)
    reason = serializers.CharField()
    transaction = serializers.CharField(source="transaction.external_id", allow_null=True)


class CatalogueItemOut(serializers.Serializer):
    id = serializers.IntegerField(source="reward.pk")
    name = serializers.CharField(source="reward.name")
    points_cost = serializers.IntegerField(source="reward.points_cost")
    min_tier = serializers.CharField(source="reward.min_tier.code", allow_null=True, default=None)
    redeemable = serializers.BooleanField()
    locked_reason = serializers.CharField(source="locked_because", allow_null=True)
    voucher_value = serializers.DecimalField(
        source="reward.voucher_value",
        max_digits=10,
        decimal_places=2,
        allow_null=True,
        help_text="Money the voucher takes off at the till; null for a product or service.",
    )


class RedemptionRequest(Strict):
    external_id = IdField(max_length=100)
    member = IdField(max_length=64)
    reward = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class RedemptionOut(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    member = serializers.CharField(
        source="holder_code",
        allow_null=True,
        help_text="The account that holds it now: once the account that redeemed it was "
        "merged into another, the one the customer keeps; null once the member's personal "
        "data was erased.",
    )
    reward = serializers.IntegerField(source="reward_id")
    reward_name = serializers.CharField(help_text="The reward's name when it was redeemed.")
    points = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Redemption.Status.choices)
    redeemed_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    code = serializers.CharField(help_text="The voucher's code: what the till is given.")
    voucher_status = serializers.ChoiceField(choices=VoucherStatus.choices)
    valid_until = serializers.DateField(
        help_text="The last day the voucher can be used, to its end in the programme's time zone."
    )
    value = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    used_at = serializers.DateTimeField(allow_null=True)


class VoucherOut(serializers.Serializer):
    """A voucher as a till checks it: GET /vouchers/{code}, and the answer to a use."""

    code = serializers.CharField(help_text="Without separators; any case and dashes are read.")
    status = serializers.ChoiceField(choices=VoucherStatus.choices, source="voucher_status")
    reward = serializers.IntegerField(source="reward_id")
    reward_name = serializers.CharField(help_text="The reward's name when it was redeemed.")
    value = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        allow_null=True,
        help_text="Money it takes off at the till; null for a product or service.",
    )
    member = serializers.CharField(
        source="holder_code",
        allow_null=True,
        help_text="The account that holds it now: once the account that redeemed it was "
        "merged into another, the one the customer keeps; null once the member's personal "
        "data was erased.",
    )
    redemption = serializers.IntegerField(source="pk", help_text="The redemption's id.")
    redeemed_at = serializers.DateTimeField()
    valid_until = serializers.DateField(
        help_text="The last day it can be used, to its end in the programme's time zone."
    )
    used_at = serializers.DateTimeField(allow_null=True)
    used_external_id = serializers.CharField(allow_null=True, help_text="The id of its use.")
    used_channel = serializers.ChoiceField(
        choices=Channel.choices, allow_blank=True, help_text="Empty until it is used."
    )
    used_store = serializers.CharField(allow_blank=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)


class VoucherUseRequest(Strict):
    external_id = IdField(
        max_length=100,
        help_text="Your id of this use (a receipt or order line): sending it again is safe.",
    )


class StrictScheme(OpenApiSerializerExtension):
    """A request body in the schema says what Strict and DRF's CharField check: no
    other fields, and text with no NUL character that is not blank once trimmed."""

    target_class = Strict
    match_subclasses = True

    @property
    def _serializer_class(self) -> type:
        """The serializer class, whether drf-spectacular gives the class or an instance."""
        return self.target if isinstance(self.target, type) else type(self.target)

    def get_name(self, auto_schema, direction):
        # Split into request and response components, drf-spectacular adds "Request"
        # itself: "TransactionRequest", not "TransactionRequestRequest".
        return self._serializer_class.__name__.removesuffix("Request")

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
            # Only a body's own docstring describes it (Strict's is about DRF).
            schema.pop("description", None)
            if own := self._serializer_class.__doc__:
                schema["description"] = inspect.cleandoc(own)
            for name, field in self.target.fields.items():
                # An optional field's default is the server's: a generator that reads
                # it would make the field required (openapi-typescript).
                schema["properties"].get(name, {}).pop("default", None)
                if type(field) is IdField:
                    code = addressable_code in field.validators
                    pattern = a_code() if code else an_id(blank=field.allow_blank)
                elif readable_name in field.validators:
                    pattern = a_name()
                elif type(field) is serializers.CharField:  # not an email, a time
                    pattern = NO_NUL if field.allow_blank else NOT_BLANK
                else:
                    continue
                schema["properties"][name]["pattern"] = pattern
        return schema


NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*\S[^\x00]*$"  # something besides white space, which DRF trims


@functools.cache
def _invisible(allowed: str = "") -> str:
    """The invisible characters (Unicode Cf, Cc; NUL among them: core.staff_input.
    invisible) but `allowed`, as ranges for a character class. Those of the BMP only: the
    few beyond it (tag characters, the format controls of hieroglyphs and musical
    notation) have no escape that ECMA's regular expressions and Python's (schemathesis)
    both read; the API still refuses them."""
    ranges, start = [], None
    for point in range(0x10001):
        hidden = point <= 0xFFFF and invisible(chr(point)) and chr(point) not in allowed
        if hidden and start is None:
            start = point
        elif not hidden and start is not None:
            ranges.append(f"\\u{start:04X}-\\u{point - 1:04X}")
            start = None
    return "".join(ranges)


def an_id(*, blank=False) -> str:
    """An id (core.ids.visible_id): nothing invisible once DRF has trimmed the white
    space around it (a tab among it), and something besides white space unless `blank`."""
    visible = rf"[^{_invisible()}]*[^{_invisible()}\s]"
    return rf"^\s*({visible})?\s*$" if blank else rf"^\s*{visible}\s*$"


def a_name() -> str:
    """A person's name (members.models.readable_name), maybe empty: nothing invisible but
    the joiners once DRF has trimmed the white space around it."""
    return rf"^\s*[^{_invisible(JOINERS)}]*\s*$"


def a_code() -> str:
    """A new customer code (members.models.addressable_code): an id with no "/", nor
    "." or ".."."""
    hidden = _invisible()
    return rf"^(?!\.\.?$)[^{hidden}/]*[^{hidden}/\s][^{hidden}/]*$"


class TransactionRequestScheme(StrictScheme):
    """A purchase or a return, as TransactionRequest.validate tells them apart: only a
    return names its purchase (original_external_id)."""

    target_class = TransactionRequest
    priority = 1

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        if direction != "request":
            return schema

        def kind(name, original, required=()):
            properties = schema["properties"]
            original = {**properties["original_external_id"], **original}
            if "original_external_id" in required:  # no default: "" is no purchase's id
                original.pop("default", None)
            return {
                **schema,
                "properties": {
                    **properties,
                    "kind": {"type": "string", "enum": [name]},
                    "original_external_id": original,
                },
                "required": [*schema["required"], *required],
            }

        def component(name, shape):  # named: each kind has its own enum
            found = ResolvedComponent(name, ResolvedComponent.SCHEMA, object=name, schema=shape)
            auto_schema.registry.register_on_missing(found)
            return found.ref

        variants = {
            "purchase": component(
                "PurchaseRequest",
                # blank once DRF has trimmed it, as TransactionRequest.validate reads it
                kind("purchase", {"pattern": r"^\s*$", "description": "Only returns name one."}),
            ),
            "return": component(
                "ReturnRequest",
                kind("return", {"pattern": an_id()}, required=["original_external_id"]),
            ),
        }
        return {
            "required": schema["required"],  # and so the body is
            "oneOf": list(variants.values()),
            "discriminator": {
                "propertyName": "kind",
                "mapping": {name: ref["$ref"] for name, ref in variants.items()},
            },
        }
