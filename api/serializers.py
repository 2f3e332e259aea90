"""The shapes of the API (DESIGN.md, Integration API): what a request may hold, checked
on its own (a 400 names the field), and what a response holds. Rules that need the
database stay in the services (a 422)."""

from rest_framework import serializers

from api.fields import AmountField, MomentField
from points.models import Transaction


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
    """A request body: a JSON object, and unknown fields are an error, not ignored."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = exc.detail
        else:
            errors = {}
        if unknown and isinstance(errors, dict):
            errors.update({name: ["Unknown field."] for name in unknown})
        if errors:
            raise serializers.ValidationError(errors)
        return value


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
    external_id = serializers.CharField(max_length=64)
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class TransactionRequest(Strict):
    external_id = serializers.CharField(max_length=100)
    member = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=["purchase", "return"])
    amount = AmountField()
    occurred_at = MomentField()
    store = serializers.CharField(max_length=50, required=False, default="", allow_blank=True)
    original_external_id = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True
    )

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
    channel = serializers.CharField()
    store = serializers.CharField()
    original_external_id = serializers.CharField(allow_null=True)
    points = serializers.IntegerField(help_text="What the transaction added (negative: a return).")
    summary = MemberSummary()


class ActionRequest(Strict):
    external_id = serializers.CharField(max_length=100)
    member = serializers.CharField(max_length=64)
    definition = serializers.CharField(max_length=50, help_text="The action's handle.")
    occurred_at = MomentField()


class LedgerEntryOut(serializers.Serializer):
    issued_at = serializers.DateTimeField()
    accrue_at = serializers.DateTimeField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    definition = serializers.CharField(source="definition.handle", allow_null=True, default=None)
    reason = serializers.CharField()
    transaction = serializers.CharField(
        source="transaction.external_id", allow_null=True, default=None
    )


class CatalogueItemOut(serializers.Serializer):
    id = serializers.IntegerField(source="reward.pk")
    name = serializers.CharField(source="reward.name")
    points_cost = serializers.IntegerField(source="reward.points_cost")
    min_tier = serializers.CharField(source="reward.min_tier.code", allow_null=True, default=None)
    redeemable = serializers.BooleanField()
    locked_reason = serializers.CharField(source="locked_because", allow_null=True)


class RedemptionRequest(Strict):
    external_id = serializers.CharField(max_length=100)
    member = serializers.CharField(max_length=64)
    reward = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class RedemptionOut(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    member = serializers.CharField(source="member.external_id")
    reward = serializers.IntegerField(source="reward_id")
    reward_name = serializers.CharField(source="reward.name")
    points = serializers.IntegerField()
    status = serializers.CharField()
    redeemed_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
