from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from import_export.admin import ExportMixin
from import_export.formats import base_formats

from members.models import Member, Notification, TierChange
from members.resources import MemberResource
from members.services import enroll_member


class ReadOnlyAdminMixin:
    """History that staff may read but never add, change or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TierChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TierChange
    fields = ["changed_at", "reason", "from_tier", "to_tier", "qualified_tier", "created_by"]
    readonly_fields = fields
    extra = 0


@admin.register(Member)
class MemberAdmin(ExportMixin, admin.ModelAdmin):
    resource_classes = [MemberResource]
    formats = [base_formats.CSV]
    list_display = [
        "external_id",
        "first_name",
        "last_name",
        "email",
        "qualified_tier",
        "effective_tier",
        "points_balance",
        "lifetime_points",
    ]
    list_select_related = ["qualified_tier", "effective_tier"]
    list_filter = ["effective_tier"]
    search_fields = ["=external_id", "email__istartswith", "last_name__istartswith"]
    show_full_result_count = False
    readonly_fields = [
        "qualified_tier",
        "effective_tier",
        "best_tier",
        "points_balance",
        "lifetime_points",
        "last_purchase_at",
        "ledger",
    ]
    inlines = [TierChangeInline]

    @admin.display(description="Ledger")
    def ledger(self, obj):
        if not obj.pk:
            return "-"
        url = reverse("admin:points_ledgerentry_changelist") + f"?member__id__exact={obj.pk}"
        return format_html('<a href="{}">Ledger entries of {}</a>', url, obj.external_id)

    def get_readonly_fields(self, request, obj=None):
        # The customer code is the key other systems use: fixed once enrolled.
        return [*self.readonly_fields, "external_id"] if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """A new member is enrolled through the service (entry tier, history); the form
        has already checked the fields, the customer code's uniqueness included."""
        if change:
            return super().save_model(request, obj, form, change)
        member = enroll_member(
            external_id=obj.external_id,
            email=obj.email,
            first_name=obj.first_name,
            last_name=obj.last_name,
            joined_at=obj.joined_at,
        )
        obj.pk, obj._state.adding = member.pk, False


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["changed_at", "member", "reason", "from_tier", "to_tier", "qualified_tier"]
    list_select_related = ["member", "from_tier", "to_tier", "qualified_tier"]
    list_filter = ["reason"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "member", "kind", "sent_at"]
    list_select_related = ["member"]
    list_filter = ["kind"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
