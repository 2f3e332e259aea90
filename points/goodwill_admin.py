"""Goodwill limits (superusers only) and the history of point requests (read-only;
decided on the Point requests page, loyalty_site.approvals_page)."""

from django.contrib import admin

from core.admin import ReadOnlyAdminMixin, with_separators
from core.paginator import CappedPaginator
from members.selectors import survivor_of_search
from points.models import AdjustmentLimit, AdjustmentRequest


@admin.register(AdjustmentLimit)
class AdjustmentLimitAdmin(admin.ModelAdmin):
    """What each staff group may give by hand: money, so superusers only."""

    list_display = ["group", "per_adjustment_shown", "per_month_shown"]

    per_adjustment_shown = with_separators("per_adjustment", "Per adjustment")
    per_month_shown = with_separators("per_month", "Per month")

    def _superuser(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_view_permission = has_add_permission = has_change_permission = _superuser
    has_delete_permission = has_module_permission = _superuser


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "requested_at",
        "member",
        "points_asked",
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

    @admin.display(description="points", ordering="points")
    def points_asked(self, made):
        return f"{made.points:+,}"

    def get_search_results(self, request, queryset, search_term):
        """A merged account's customer code finds the requests it had, which the merge
        moved to the member it was merged into (M5)."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if survivor := survivor_of_search(search_term):
            found |= queryset.filter(member=survivor)
        return found, may_have_duplicates
