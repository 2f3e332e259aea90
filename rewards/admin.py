from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

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
    # The start of a customer code, e-mail or last name (the member search's indexes).
    search_fields = [
        "member__external_id__istartswith",
        "member__email__istartswith",
        "member__last_name__istartswith",
    ]
    search_help_text = "Customer code, e-mail or last name: the whole or its start."
    show_full_result_count = False
    paginator = CappedPaginator
    actions = ["cancel"]

    @admin.action(permissions=["cancel"], description="Cancel and refund the selected redemptions")
    def cancel(self, request, queryset):
        """W4, after a page that lists what is refunded and asks why."""
        reason = " ".join(request.POST.get("reason", "").split())
        if not reason:
            context = {
                **self.admin_site.each_context(request),
                "title": "Cancel and refund these redemptions?",
                "opts": self.opts,
                "redemptions": queryset.select_related("member", "reward"),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "asked": "reason" in request.POST,
            }
            return TemplateResponse(
                request, "admin/rewards/redemption/cancel_confirmation.html", context
            )
        cancelled = 0
        for redemption in queryset.select_related("member", "reward"):
            try:
                cancel_redemption(redemption=redemption, by=request.user, reason=reason)
                self.log_change(request, redemption, f"Cancelled and refunded: {reason}")
                cancelled += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
        if cancelled:
            self.message_user(request, f"{cancelled} redemption(s) cancelled and refunded.")

    def has_cancel_permission(self, request):
        return request.user.has_perm("rewards.cancel_redemption")
