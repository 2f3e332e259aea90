from import_export import fields

from core.exports import FormulaSafeResource
from members.models import Member


class MemberResource(FormulaSafeResource):
    """Members to CSV for the admin's export, safe to open in a spreadsheet."""

    qualified_tier = fields.Field(attribute="qualified_tier__name", column_name="qualified_tier")
    effective_tier = fields.Field(attribute="effective_tier__name", column_name="effective_tier")

    class Meta:
        model = Member
        fields = (
            "external_id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "joined_at",
            "qualified_tier",
            "effective_tier",
            "points_balance",
            "lifetime_points",
            "last_purchase_at",
        )
        export_order = fields

    def get_queryset(self):
        return super().get_queryset().select_related("qualified_tier", "effective_tier")
