from django.contrib import admin, messages
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from core.admin import ReadOnlyAdminMixin
from core.paginator import CappedPaginator
from members.models import Notification, TierChange
from members.services import email_message, send_again


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["changed_at", "member", "reason", "from_tier", "to_tier", "qualified_tier"]
    list_select_related = ["member", "from_tier", "to_tier", "qualified_tier"]
    list_filter = ["reason"]
    search_fields = ["=member__external_id"]
    show_full_result_count = False
    paginator = CappedPaginator
    # Newest first (the model's order), or by member, both from an index; by reason or
    # tier it sorted millions of rows on each page (2.5 to 5 s at a million members),
    # and oldest first the thousands a bulk job records at one moment (0.8 s).
    sortable_by = ["member"]


class DeliveryFilter(admin.SimpleListFilter):
    title, parameter_name = "delivery", "delivery"

    def lookups(self, request, model_admin):
        return [
            ("waiting", "Waiting"),
            ("refused", "Refused, tried again"),
            ("given_up", "Given up"),
        ]

    def queryset(self, request, queryset):
        given_up = Notification.given_up(timezone.now())
        unsent = queryset.filter(sent_at=None)
        return {
            "waiting": unsent.filter(first_refused_at=None),
            "refused": unsent.filter(first_refused_at__isnull=False).exclude(given_up),
            "given_up": queryset.filter(given_up),
        }.get(self.value(), queryset)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "member", "kind", "delivery", "failed_attempts", "last_error"]
    list_select_related = ["member"]
    list_filter = ["kind", DeliveryFilter]
    # The page an agent opens when a member calls about a message: what it said, not
    # the data it was written from.
    fields = ["member", "kind", "message", "created_at", "sent_at", "failed_attempts"]
    fields += ["last_error"]
    readonly_fields = ["message"]
    actions = ["send_again"]

    search_fields = ["=member__external_id"]
    show_full_result_count = False
    paginator = CappedPaginator
    # Newest written first, as the ledger list: the primary key's order. By time (the
    # model's order, unindexed: the jobs write messages by the thousand) each page
    # sorted every message, 0.4 s at a million.
    ordering = ["-pk"]
    sortable_by = []

    def get_queryset(self, request):
        given_up = Notification.given_up(timezone.now())
        return (
            super()
            .get_queryset(request)
            .annotate(is_given_up=ExpressionWrapper(given_up, output_field=BooleanField()))
        )

    @admin.display(description="Delivery")
    def delivery(self, notification):
        if notification.sent_at:
            return f"Sent {date_format(timezone.localtime(notification.sent_at), 'j M Y H:i')}"
        if notification.first_refused_at is None:
            return "Waiting"
        if notification.is_given_up:
            return "Given up: refused for a day"
        return "Refused, tried again"

    @admin.display(description="Message")
    def message(self, notification):
        """What the member read, as sent (to its address then); a message not sent yet
        as it will be; one sent before copies were kept, written again, and said so."""
        if copy := notification.sent_copy:
            (to, subject, body), note = copy, ""
        else:
            email = email_message(notification)
            subject, body, to = email.subject, email.body, email.to[0]
            note = (
                "Sent before the CX Manager kept a copy: written again here from today's "
                "names and tiers."
                if notification.sent_at
                else ""
            )
        return format_html(
            '<div id="message"><p class="cx-muted">{}</p><strong>{}</strong>'
            '<pre style="white-space: pre-wrap">{}</pre>{}</div>',
            f"To {to}" if to else "",
            subject,
            body,
            format_html('<p class="cx-muted">{}</p>', note) if note else "",
        )

    def has_send_again_permission(self, request) -> bool:
        return request.user.has_perm("members.send_again_notification")

    @admin.action(permissions=["send_again"], description="Send the refused messages again")
    def send_again(self, request, queryset):
        # The agent who corrected a member's address sends what the server refused.
        count = send_again(notifications=queryset)
        if count:
            noun = "message" if count == 1 else "messages"
            self.message_user(request, f"{count:,} {noun} will be sent again within a minute.")
        else:
            self.message_user(
                request, "None of these was refused: nothing to send again.", messages.WARNING
            )
