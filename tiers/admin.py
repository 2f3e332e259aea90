from django.contrib import admin, messages
from django.db import transaction

from tiers.models import Tier
from tiers.services import recalculate_all_tiers


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
            transaction.on_commit(lambda: self._recalculate(request))

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        transaction.on_commit(lambda: self._recalculate(request))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.threshold == 0)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _recalculate(self, request):
        changed = recalculate_all_tiers()
        self.message_user(request, f"Tiers recalculated: {changed:,} members moved.", messages.INFO)
