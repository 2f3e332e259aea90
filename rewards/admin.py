from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from core.admin import ReadOnlyAdminMixin
from core.paginator import CappedPaginator
from rewards.models import Redemption, Reward
from rewards.services import cancel_redemption


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "points_cost",
        "min_tier",
        "stock",
        "available_from",
        "available_until",
        "is_active",
    ]
    list_select_related = ["min_tier"]
    list_filter = ["is_active", "min_tier"]
    search_fields = ["name"]


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The history of redemptions; cancelling goes through the service (W4)."""

    list_display = ["redeemed_at", "member", "reward", "points", "status", "redeemed_by"]
    list_select_related = ["member", "reward", "redeemed_by"]
    list_filter = ["status"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
    paginator = CappedPaginator
    actions = ["cancel"]

    @admin.action(permissions=["cancel"], description="Cancel and refund the selected redemptions")
    def cancel(self, request, queryset):
        cancelled = 0
        for redemption in queryset.select_related("member", "reward"):
            try:
                cancel_redemption(redemption=redemption, by=request.user)
                self.log_change(request, redemption, "Cancelled and refunded")
                cancelled += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
        if cancelled:
            self.message_user(request, f"{cancelled} redemption(s) cancelled and refunded.")

    def has_cancel_permission(self, request):
        return request.user.has_perm("rewards.cancel_redemption")
