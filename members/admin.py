from django.contrib import admin

from core.admin import ReadOnlyAdminMixin
from core.paginator import CappedPaginator
from members.models import Notification, TierChange


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["changed_at", "member", "reason", "from_tier", "to_tier", "qualified_tier"]
    list_select_related = ["member", "from_tier", "to_tier", "qualified_tier"]
    list_filter = ["reason"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
    paginator = CappedPaginator


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "member", "kind", "sent_at", "failed_attempts"]
    list_select_related = ["member"]
    list_filter = ["kind"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
    paginator = CappedPaginator
