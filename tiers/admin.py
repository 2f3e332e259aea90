from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse

from tiers.models import DegradationPolicy, Tier
from tiers.tasks import recalculate_all_tiers_task


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "code",
        "threshold",
        "multiplier",
        "points_expire",
        "upgrade_bonus_points",
    ]
    ordering = ["threshold"]
    prepopulated_fields = {"code": ["name"]}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "threshold" in form.changed_data or not change:
            self._recalculate(request)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        self._recalculate(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.threshold == 0)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _recalculate(self, request):
        """T3: requalify every member in the background once the change is saved."""
        transaction.on_commit(recalculate_all_tiers_task.delay)
        self.message_user(
            request, "Members are being requalified under the new thresholds.", messages.INFO
        )


class SingletonAdmin(admin.ModelAdmin):
    """A policy of one row: the list goes straight to it; no add, no delete."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        row = self.model.current()
        opts = row._meta
        return redirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))


@admin.register(DegradationPolicy)
class DegradationPolicyAdmin(SingletonAdmin):
    """D1: a marketer switches degradation on and sets its pace."""
