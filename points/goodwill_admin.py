"""Goodwill limits (superusers only) and the history of point requests (read-only;
decided on the Point requests page, loyalty_site.approvals_page)."""

from django.contrib import admin
from django.contrib.humanize.templatetags.humanize import intcomma

from core.admin import ReadOnlyAdminMixin
from core.paginator import CappedPaginator
from points.models import AdjustmentLimit, AdjustmentRequest


@admin.register(AdjustmentLimit)
class AdjustmentLimitAdmin(admin.ModelAdmin):
    """What each staff group may give by hand: money, so superusers only."""

    list_display = ["group", "per_adjustment_shown", "per_month_shown"]

    @admin.display(description="Per adjustment", ordering="per_adjustment")
    def per_adjustment_shown(self, limit):
        return intcomma(limit.per_adjustment)

    @admin.display(description="Per month", ordering="per_month")
    def per_month_shown(self, limit):
        return intcomma(limit.per_month)

    def _superuser(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_view_permission = has_add_permission = has_change_permission = _superuser
    has_delete_permission = has_module_permission = _superuser


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "requested_at",
        "member",
        "points",
        "requested_by",
        "status",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status"]
    list_select_related = ["member", "requested_by", "decided_by"]
    search_fields = ["member__external_id__istartswith"]
    show_full_result_count = False
    paginator = CappedPaginator
