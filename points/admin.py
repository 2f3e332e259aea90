from django.contrib import admin

from members.admin import ReadOnlyAdminMixin
from points.models import Campaign, LedgerEntry, PointDefinition, Transaction


@admin.register(PointDefinition)
class PointDefinitionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "handle",
        "kind",
        "earn_rate",
        "points",
        "accrue_delay_days",
        "counts_toward_tier",
        "redeemable",
        "is_active",
    ]
    list_filter = ["kind", "is_active"]
    prepopulated_fields = {"handle": ["name"]}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "multiplier", "starts_at", "ends_at", "is_active"]
    list_filter = ["is_active"]
    filter_horizontal = ["tiers"]


class LedgerEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LedgerEntry
    fields = ["issued_at", "kind", "points", "accrue_at", "reason"]
    readonly_fields = fields
    extra = 0


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Transactions come from channels and imports through the services, never by hand."""

    list_display = ["external_id", "member", "kind", "amount", "occurred_at", "channel", "store"]
    list_select_related = ["member"]
    list_filter = ["kind", "channel"]
    search_fields = ["=external_id", "=member__external_id"]
    show_full_result_count = False
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "issued_at",
        "member",
        "kind",
        "points",
        "accrue_at",
        "definition",
        "transaction",
        "created_by",
        "reason",
    ]
    list_select_related = ["member", "definition", "transaction", "created_by"]
    list_filter = ["kind"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
